"""The artifact store: content-hashed blobs in S3 under a run-scoped layout."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ArtifactRef:
    uri: str
    sha256: str
    size: int

    def as_dict(self) -> dict[str, Any]:
        return {"uri": self.uri, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    etag: str
    version_id: str | None


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in URI: {uri!r}")
    return bucket, key


class ArtifactIntegrityError(RuntimeError):
    """An artifact's bytes do not match the sha256 recorded when it was written: it is never loaded."""


class ArtifactStore(Protocol):
    """Where steps write what they produce."""

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ArtifactRef: ...

    def get_bytes(self, uri: str) -> bytes: ...

    def copy(self, ref: dict[str, Any], key: str) -> ArtifactRef: ...

    def exists(self, key: str) -> bool: ...

    def uri(self, key: str) -> str: ...


class ObjectReader(Protocol):
    """Read access to the landing data."""

    def list_objects(self, bucket: str, prefix: str) -> list[ObjectInfo]: ...

    def head(self, bucket: str, key: str) -> ObjectInfo: ...

    def read(self, obj: ObjectInfo) -> bytes: ...


class S3ArtifactStore:
    """ArtifactStore over one S3 bucket; each object is stored with its sha256 as metadata."""

    def __init__(self, bucket: str, client: Any) -> None:
        self.bucket = bucket
        self._s3 = client

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ArtifactRef:
        digest = hashlib.sha256(data).hexdigest()
        self._s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            Metadata={"sha256": digest},
        )
        return ArtifactRef(self.uri(key), digest, len(data))

    def get_bytes(self, uri: str) -> bytes:
        bucket, key = parse_s3_uri(uri) if uri.startswith("s3://") else (self.bucket, uri)
        body: bytes = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def copy(self, ref: dict[str, Any], key: str) -> ArtifactRef:
        """Server-side copy of an artifact (any size) to ``key`` in this bucket; its sha256 travels with it."""
        bucket, src = parse_s3_uri(ref["uri"])
        self._s3.copy({"Bucket": bucket, "Key": src}, self.bucket, key)
        return ArtifactRef(self.uri(key), str(ref["sha256"]), int(ref["size"]))

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=key)
        except self._s3.exceptions.ClientError as err:
            if err.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True


class S3ObjectReader:
    def __init__(self, client: Any) -> None:
        self._s3 = client

    @staticmethod
    def _info(bucket: str, key: str, meta: dict[str, Any]) -> ObjectInfo:
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=int(meta.get("Size", meta.get("ContentLength", 0))),
            etag=str(meta.get("ETag", "")).strip('"'),
            version_id=meta.get("VersionId") if meta.get("VersionId") not in (None, "null") else None,
        )

    def list_objects(self, bucket: str, prefix: str) -> list[ObjectInfo]:
        # list_object_versions (not list_objects_v2) so the manifest pins each object's version id.
        out: list[ObjectInfo] = []
        for page in self._s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Versions", []):
                if item.get("IsLatest"):
                    out.append(self._info(bucket, item["Key"], item))
        return sorted(out, key=lambda o: o.key)

    def head(self, bucket: str, key: str) -> ObjectInfo:
        return self._info(bucket, key, self._s3.head_object(Bucket=bucket, Key=key))

    def read(self, obj: ObjectInfo) -> bytes:
        kwargs: dict[str, Any] = {"Bucket": obj.bucket, "Key": obj.key}
        if obj.version_id:
            kwargs["VersionId"] = obj.version_id
        body: bytes = self._s3.get_object(**kwargs)["Body"].read()
        return body


def get_verified(store: ArtifactStore, ref: dict[str, Any]) -> bytes:
    """The bytes of ``ref``, checked against its recorded sha256 before anyone trusts them (a pickle is
    code): a mismatch raises :class:`ArtifactIntegrityError`."""
    data = store.get_bytes(ref["uri"])
    expected = ref.get("sha256")
    if not expected:
        raise ArtifactIntegrityError(f"{ref['uri']}: no sha256 recorded; refusing to load an unverifiable artifact")
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ArtifactIntegrityError(
            f"{ref['uri']}: sha256 {actual[:16]}… does not match the recorded {str(expected)[:16]}…; "
            "the object changed after it was written, so it is not loaded"
        )
    return data


def put_json(store: ArtifactStore, key: str, obj: Any) -> ArtifactRef:
    data = json.dumps(obj, indent=1, sort_keys=True, default=str).encode()
    return store.put_bytes(key, data, "application/json")


def get_json(store: ArtifactStore, uri: str) -> Any:
    return json.loads(store.get_bytes(uri))
