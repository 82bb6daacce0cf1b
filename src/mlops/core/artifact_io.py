"""Reading and writing artifacts through the artifact store port: JSON documents, and bytes checked against the
sha256 recorded when they were written."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops.core.ports import ArtifactIntegrityError, ArtifactRef, ArtifactStore


def get_verified(store: ArtifactStore, ref: Mapping[str, Any]) -> bytes:
    """The bytes of ``ref``, checked against its recorded sha256 before anyone trusts them (a pickle is
    code): a mismatch raises :class:`ArtifactIntegrityError`."""
    data = store.get_bytes(ref["uri"])
    _check(ref, hashlib.sha256(data).hexdigest())
    return data


def download_verified(store: ArtifactStore, ref: Mapping[str, Any], path: str | Path) -> Path:
    """``ref`` into the local file ``path`` (streamed: a table larger than the function's memory fits on its
    disk), checked against its recorded sha256 as :func:`get_verified` checks bytes; the file is removed if the
    check fails."""
    path = Path(path)
    if not ref.get("sha256"):
        _check(ref, "")
    store.download(ref["uri"], str(path))
    with path.open("rb") as fh:
        actual = hashlib.file_digest(fh, "sha256").hexdigest()  # read in chunks, never whole
    try:
        _check(ref, actual)
    except ArtifactIntegrityError:
        path.unlink(missing_ok=True)
        raise
    return path


def _check(ref: Mapping[str, Any], actual: str) -> None:
    expected = ref.get("sha256")
    if not expected:
        raise ArtifactIntegrityError(f"{ref['uri']}: no sha256 recorded; refusing to load an unverifiable artifact")
    if actual != expected:
        raise ArtifactIntegrityError(
            f"{ref['uri']}: sha256 {actual[:16]}… does not match the recorded {str(expected)[:16]}…; "
            "the object changed after it was written, so it is not loaded"
        )


def put_json(store: ArtifactStore, key: str, obj: Any) -> ArtifactRef:
    data = json.dumps(obj, indent=1, sort_keys=True, default=str).encode()
    return store.put_bytes(key, data, "application/json")


def get_json(store: ArtifactStore, uri: str) -> Any:
    return json.loads(store.get_bytes(uri))
