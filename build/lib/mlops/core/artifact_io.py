"""Reading and writing artifacts through the artifact store port: JSON documents, and bytes checked against the
sha256 recorded when they were written."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from mlops.core.ports import ArtifactIntegrityError, ArtifactRef, ArtifactStore


def get_verified(store: ArtifactStore, ref: Mapping[str, Any]) -> bytes:
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
