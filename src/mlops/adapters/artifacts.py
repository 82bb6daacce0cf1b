"""The artifact store: content-hashed blobs in S3 under a run-scoped layout."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from mlops.core.errors import SourceObjectMissingError
from mlops.core.ports import ArtifactRef, ObjectInfo, parse_s3_uri

MISSING = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})  # S3's ways of saying the object is gone


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

    def put_file(self, key: str, path: str, content_type: str = "application/octet-stream") -> ArtifactRef:
        with open(path, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        self._s3.upload_file(
            path, self.bucket, key, ExtraArgs={"ContentType": content_type, "Metadata": {"sha256": digest}}
        )
        return ArtifactRef(self.uri(key), digest, os.path.getsize(path))

    def get_bytes(self, uri: str) -> bytes:
        bucket, key = parse_s3_uri(uri) if uri.startswith("s3://") else (self.bucket, uri)
        body: bytes = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def download(self, uri: str, path: str) -> None:
        bucket, key = parse_s3_uri(uri) if uri.startswith("s3://") else (self.bucket, uri)
        self._s3.download_file(bucket, key, path)

    def copy(self, ref: dict[str, Any], key: str) -> ArtifactRef:
        """Server-side copy of an artifact (any size) to ``key`` in this bucket; its sha256 travels with it."""
        bucket, src = parse_s3_uri(ref["uri"])
        self._s3.copy({"Bucket": bucket, "Key": src}, self.bucket, key)
        return ArtifactRef(self.uri(key), str(ref["sha256"]), int(ref["size"]))

    def keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` in this bucket, sorted."""
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

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
        try:
            return self._info(bucket, key, self._s3.head_object(Bucket=bucket, Key=key))
        except self._s3.exceptions.ClientError as err:
            if _code(err) not in MISSING:
                raise
            raise _gone(f"s3://{bucket}/{key}", _code(err)) from err

    def read(self, obj: ObjectInfo) -> bytes:
        kwargs: dict[str, Any] = {"Bucket": obj.bucket, "Key": obj.key}
        if obj.version_id:
            kwargs["VersionId"] = obj.version_id
        try:
            body: bytes = self._s3.get_object(**kwargs)["Body"].read()
        except self._s3.exceptions.ClientError as err:
            if _code(err) not in MISSING:
                raise
            where = f"s3://{obj.bucket}/{obj.key}"
            raise _gone(f"version {obj.version_id} of {where}" if obj.version_id else where, _code(err)) from err
        return body


def _code(err: Any) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _gone(what: str, code: str) -> SourceObjectMissingError:
    """An object S3 no longer has, named, with what to do (the run fails; it is not retried: it will not return)."""
    return SourceObjectMissingError(
        f"{what} was deleted before the run read it ({code}); upload it again to train on it"
    )
