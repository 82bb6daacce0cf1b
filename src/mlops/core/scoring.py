"""Batch scoring jobs: the records that travel through the scoring state machine, and the job's record.

A job is started by the trigger (an upload under a model's scoring prefix, or ``mlops score``), which pins the
champion's version once and records the job (``JOB#<job_id>`` beside the model's runs). The state machine then plans
the shards (``PlanResult``: the shard list is an S3 object the Distributed Map reads), scores each shard
(``ShardResult``, written by the Map's ResultWriter) and finishes (``JobOutcome``): the manifest, ``_SUCCESS``, the
job's record. Pydantic only, as :mod:`mlops.core.results`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mlops.core.constants import SCORED_PREFIX
from mlops.core.ports import ArtifactRefDict

JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED = "RUNNING", "SUCCEEDED", "FAILED"
SHARDS_FILE = "_shards.json"
RESULTS_FOLDER = "_results/"  # the Distributed Map's ResultWriter writes here
MANIFEST_FILE = "_manifest.json"  # underscore: readers of the folder as a Parquet dataset skip it, as _SUCCESS
FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}


def table_format(key: str) -> str | None:
    """``csv``, ``parquet`` or ``jsonl`` by the key's suffix (None: not a table a job scores)."""
    return next((fmt for suffix, fmt in FORMATS.items() if key.lower().endswith(suffix)), None)


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    def as_state(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def output_prefix(model: str, job_id: str) -> str:
    """``scored/<model>/<job>/`` in the artifact bucket."""
    return f"{SCORED_PREFIX}{model}/{job_id}/"


def part_key(model: str, job_id: str, index: int) -> str:
    return f"{output_prefix(model, job_id)}part-{index:05d}.parquet"


class JobRef(_Record):
    """What every shard is told of its job: the job, its model and the version it pinned at its start."""

    job_id: str = Field(min_length=8, max_length=64)
    model: str
    version: int = Field(ge=1)


class ScoringJob(JobRef):
    """The execution's input: the job, and the objects it scores (one bucket)."""

    bucket: str
    keys: list[str] = Field(min_length=1)


class Shard(_Record):
    """Rows [n·part/parts, n·(part+1)/parts) of one input object (n: its rows); written to ``part-<index>``."""

    index: int = Field(ge=0)
    bucket: str
    key: str
    etag: str = ""
    size: int = 0
    part: int = 0
    parts: int = 1


class ShardInput(_Record):
    """What a child of the Distributed Map receives: its batch of shards (``ItemBatcher``) and the job."""

    items: list[Shard] = Field(alias="Items", min_length=1)
    job: JobRef = Field(alias="BatchInput")


class ShardResult(_Record):
    index: int
    key: str
    part: ArtifactRefDict
    rows_in: int
    rows_out: int
    errors: int
    total_rows: int  # the input object's rows (each shard of an object reads them all)
    first_row: int
    captured: int = 0
    seconds: float = 0.0


class PlanResult(_Record):
    shards: ArtifactRefDict  # the JSON list of shards (what the Map's ItemReader reads)
    shards_bucket: str
    shards_key: str
    count: int
    objects: int
    bytes: int
    tolerated_failure_percentage: float = 0.0


class JobOutcome(_Record):
    job_id: str
    model: str
    version: int
    status: str
    rows_in: int = 0
    rows_out: int = 0
    errors: int = 0
    manifest: ArtifactRefDict | None = None
    output: str = ""
    reason: str | None = None


class FinishInput(ScoringJob):
    """The finishing step's input: the execution's state — the job, its plan, and the Map's ResultWriter details
    (``results``) or the failure caught from the Map or a step (``failure``: ``{"Error", "Cause"}``)."""

    plan: PlanResult | None = None
    results: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None
