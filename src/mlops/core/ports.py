"""The ports: what the domain needs from the outside world, as protocols and the values they pass. The adapters
(``mlops.adapters``) implement them over AWS; the domain imports only these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from typing_extensions import TypedDict  # pydantic validates a TypedDict from typing_extensions before 3.12


class ArtifactRefDict(TypedDict):
    """An :class:`ArtifactRef` as it travels: in the state machine's state, run records and the registry.
    The handlers' event models validate it (a ref without its sha256 fails at the step's edge, naming the
    field), and the steps take it as it is."""

    uri: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ArtifactRef:
    """Where an artifact is, and the sha256 and size it had when it was written: one concept, one shape."""

    uri: str
    sha256: str
    size: int

    def as_dict(self) -> ArtifactRefDict:
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

    def put_file(self, key: str, path: str, content_type: str = "application/octet-stream") -> ArtifactRef:
        """The local file ``path`` stored at ``key``, streamed (multipart past a part's size: never whole in
        memory), with its sha256 read from the file in chunks."""
        ...

    def get_bytes(self, uri: str) -> bytes: ...

    def download(self, uri: str, path: str) -> None:
        """The object at ``uri`` into the local file ``path``, streamed (never whole in memory)."""
        ...

    def copy(self, ref: dict[str, Any], key: str) -> ArtifactRef: ...

    def exists(self, key: str) -> bool: ...

    def keys(self, prefix: str) -> list[str]: ...

    def uri(self, key: str) -> str: ...


class ObjectReader(Protocol):
    """Read access to the landing data."""

    def list_objects(self, bucket: str, prefix: str) -> list[ObjectInfo]: ...

    def head(self, bucket: str, key: str) -> ObjectInfo: ...

    def read(self, obj: ObjectInfo) -> bytes: ...


class MetadataStore(Protocol):
    def put_run(self, record: dict[str, Any]) -> None: ...
    def get_run(self, model: str, run_id: str) -> dict[str, Any] | None: ...
    def update_run(self, model: str, run_id: str, fields: dict[str, Any]) -> None: ...
    def record_step(self, model: str, run_id: str, step: str, info: dict[str, Any], section: str = "steps") -> None: ...
    def list_runs(self, model: str, limit: int = 50) -> list[dict[str, Any]]: ...
    def put_job(self, record: dict[str, Any]) -> None: ...
    def get_job(self, model: str, job_id: str) -> dict[str, Any] | None: ...
    def update_job(self, model: str, job_id: str, fields: dict[str, Any]) -> None: ...
    def list_jobs(self, model: str, limit: int = 50) -> list[dict[str, Any]]: ...
    def next_counter(self, model: str, name: str) -> int: ...
    def put_model_version(self, record: dict[str, Any]) -> None: ...
    def update_model_version(self, model: str, version: int, fields: dict[str, Any]) -> None: ...
    def get_model_version(self, model: str, version: int) -> dict[str, Any] | None: ...
    def list_model_versions(self, model: str) -> list[dict[str, Any]]: ...
    def get_alias(self, model: str, alias: str) -> int | None: ...
    def set_alias(
        self, model: str, alias: str, version: int, history: dict[str, Any], fields: dict[str, Any] | None = None
    ) -> None: ...
    def get_alias_item(self, model: str, alias: str) -> dict[str, Any] | None: ...
    def clear_alias(self, model: str, alias: str, version: int, history: dict[str, Any]) -> bool: ...
    def alias_history(self, model: str) -> list[dict[str, Any]]: ...
    def put_schema_version(self, model: str, version: int, record: dict[str, Any]) -> None: ...
    def latest_schema(self, model: str) -> dict[str, Any] | None: ...
    def schema_versions(self, model: str) -> list[dict[str, Any]]:
        """Every recorded schema version, oldest first (a feature set's: its definitions, by hash)."""
        ...

    def delete_run(self, model: str, run_id: str) -> None: ...
    def claim(self, model: str, sk: str, item: dict[str, Any]) -> dict[str, Any] | None: ...
    def release_claim(self, model: str, sk: str, run_id: str) -> bool: ...
    def acquire_lock(self, model: str, holder: dict[str, Any], now: int) -> dict[str, Any] | None: ...
    def acquire_lease(self, model: str, sk: str, holder: dict[str, Any], now: int) -> dict[str, Any] | None: ...
    def release_lease(self, model: str, sk: str, run_id: str) -> bool: ...
    def release_lock(self, model: str, run_id: str) -> bool: ...
    def add_pending(self, model: str, record: dict[str, Any]) -> None: ...
    def quarantine(self, model: str, record: dict[str, Any]) -> None: ...
    def quarantined(self, model: str) -> dict[str, dict[str, Any]]: ...
    def release_quarantine(self, model: str, bucket_key: str) -> bool: ...
    def take_pending(self, model: str) -> list[dict[str, Any]]: ...
    def put_execution(self, run_id: str, step: str, record: dict[str, Any]) -> None: ...
    def executions(self, run_id: str) -> list[dict[str, Any]]: ...
    def artifact_uses(self, sha256: str) -> list[dict[str, Any]]: ...


TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


class ExecutionExistsError(RuntimeError):
    """Step Functions refuses a second execution of one name (for 90 days on a Standard workflow)."""

    def __init__(self, execution_arn: str) -> None:
        super().__init__(f"an execution named {execution_arn.rsplit(':', 1)[-1]} already exists")
        self.execution_arn = execution_arn


class Executions(Protocol):
    """The workflow: executions of the training state machine, and the answers to its waiting tasks."""

    state_machine_arn: str

    def arn_of(self, name: str) -> str: ...
    def start(self, name: str, payload: dict[str, Any]) -> str: ...
    def status(self, execution_arn: str) -> str | None: ...
    def succeed_task(self, token: str, output: dict[str, Any]) -> None: ...
    def fail_task(self, token: str, error: str, cause: str) -> None: ...


class EventPublisher(Protocol):
    """Where the platform's facts go once durable (:mod:`mlops.core.facts`): EventBridge, or nowhere."""

    def publish(self, fact: Any) -> None: ...


class NoEvents:
    """A deployment or a test that publishes nothing (the functions that make no fact, tests that do not look)."""

    def publish(self, fact: Any) -> None:
        return None


class MetricsPublisher(Protocol):
    def publish(self, values: dict[str, float], dimensions: list[dict[str, str]], when: datetime) -> None:
        """Each value once per dimension set, timestamped ``when``."""
        ...


class ParameterStore(Protocol):
    def get(self, name: str) -> str: ...

    def get_many(self, names: list[str]) -> dict[str, str]:
        """The values of those of ``names`` that exist (a missing one is simply absent)."""
        ...


@dataclass(frozen=True)
class OnlineValue:
    """An entity's latest values in the online store, with the event time they carry and when they expire."""

    entity: str
    event_time: float  # epoch seconds
    expires_at: int  # epoch seconds (the table's TTL attribute)
    values: dict[str, Any]

    def live(self, now: float) -> bool:
        return self.expires_at > now


class OnlineStore(Protocol):
    """The latest value per (feature set, entity): written only forward in event time, read in batches."""

    def put_latest(self, feature_set: str, value: OnlineValue, ingested_at: str) -> bool:
        """Store ``value`` unless the entity holds one at least as new (False: it did, nothing changed)."""
        ...

    def get_many(self, feature_set: str, entities: list[str]) -> dict[str, OnlineValue]:
        """The stored values of those of ``entities`` the store has (expired ones included: the caller judges)."""
        ...
