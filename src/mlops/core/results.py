"""What each step returns: the records that travel in the state machine's state from one step to the next.

A step builds one of these models; its handler sends it on as JSON (:meth:`StepResult.as_state`), and the
handlers of the later steps parse it back with the same model (their event models in :mod:`mlops.wiring.handlers`
are made of these). So each record has one definition, checked on both sides:

- writing is checked statically: a step cannot set a field its result does not declare (mypy), and each value
  is validated when the model is built;
- reading is tolerant of what it does not know: an unknown field is ignored, so an execution that spans a
  deploy (an older step's output read by a newer step) goes on; a field a step needs is required, and a
  missing or malformed one fails at the step's edge, naming it.

Pydantic only (no numpy): every bundle (data, train, export, serving, base) imports this module.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlops.core.ports import ArtifactRefDict

Metrics = dict[str, int | float | None]  # a metric's value; undefined on the split is None; the row count an int


class StepResult(BaseModel):
    """A step's result: artifact references and the small numbers the run record and the next steps use."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    def as_state(self) -> dict[str, Any]:
        """The result as it travels: JSON types, field names as the state machine's paths spell them."""
        return self.model_dump(mode="json", by_alias=True)

    def artifacts(self) -> dict[str, ArtifactRefDict]:
        """The artifacts this result references, by field (the lineage execution's outputs)."""
        state = self.as_state()
        return {k: v for k, v in state.items() if isinstance(v, dict) and "sha256" in v}  # type: ignore[misc]


class ShardsResult(StepResult):
    """The snapshot split into shards for statistics past one function (``data.shards`` / ``data.shard_rows``):
    the Distributed Map lists ``prefix`` (keys in the artifact bucket), one child per object, each computing its
    partial under ``plan``; the merge expects one partial per shard the manifest names."""

    count: int
    prefix: str  # the shards' key prefix: every object under it is a shard
    results: str  # the key prefix the Map's ResultWriter writes its children's results under
    plan: ArtifactRefDict  # the StatisticsPlan every shard computes alike


class ExtractResult(StepResult):
    snapshot: ArtifactRefDict
    manifest: ArtifactRefDict
    shards: ShardsResult | None = None  # None: the statistics are one pass in one function
    rows: int = 0
    columns: int = 0
    objects: int = 0  # the landing objects in the snapshot
    bytes: int = 0
    set_aside: int = 0  # objects unusable on their own, quarantined, the run going on without them


class AnalyzeResult(StepResult):
    statistics: ArtifactRefDict
    report: ArtifactRefDict | None = None
    rows: int = 0
    features: int = 0
    shards: int = 0  # the shards the statistics were merged from (0: one pass)


class ValidateDataResult(StepResult):
    passed: bool
    schema_: ArtifactRefDict | None = Field(default=None, alias="schema")  # None: the batch was not usable
    schema_version: int  # 0: this run's candidate schema, stored as a version only if the run registers
    anomalies: ArtifactRefDict | None = None
    num_errors: int = 0
    num_warnings: int = 0
    schema_inferred: bool = False
    drift_checked: bool = False
    drifted_features: int = 0

    @property
    def usable_schema(self) -> ArtifactRefDict:
        """The schema the later steps use; the state machine sends them only a batch that passed."""
        if self.schema_ is None:
            raise ValueError("validate_data produced no schema (the batch was not usable): nothing to go on with")
        return self.schema_


class PrepareResult(StepResult):
    dataset: ArtifactRefDict  # the spec the later steps load (task, feature kinds, classes, the splits' refs)
    train: ArtifactRefDict
    validation: ArtifactRefDict
    test: ArtifactRefDict
    task: str
    rows: dict[str, int]  # per split


class Trial(BaseModel):
    """One candidate configuration, as plan_trials lists it and the tuning Map hands it to run_trial."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    trial_id: str
    family: str
    params: dict[str, Any]
    sample: bool = False  # fit on the training split's sample, scored on validation's (the Fargate path)


class PlanResult(StepResult):
    trials: list[Trial]
    count: int
    max_concurrency: int
    # Where the chosen candidate is refit: "lambda" (the train function) or "fargate" (an ECS task of this size:
    # cpu, memory, ephemeral_gb, timeout_s, spot), and the rows the trials fit.
    compute: Literal["lambda", "fargate"] = "lambda"
    fargate: dict[str, Any] | None = None
    tune_rows: int = 0


class TrialResult(StepResult):
    """One trial's outcome: scored on validation, failed in its fit, or (``cause`` set) died in its Lambda
    and caught by the tuning Map, which records the Lambda's error and cause in its place."""

    trial_id: str
    family: str
    params: dict[str, Any]
    sample: bool = False
    status: Literal["SUCCEEDED", "FAILED"]
    metric: str | None = None
    value: float | None = None
    validation: Metrics | None = None
    error: str | None = None
    cause: str | None = None
    started_at: str | None = None
    duration_s: float | None = None


class TrainResult(StepResult):
    model: ArtifactRefDict
    family: str
    params: dict[str, Any]
    trials: ArtifactRefDict | None = None
    best_trial: str | None = None
    metric: str | None = None
    validation_value: float | None = None
    num_trials: int = 0
    refit_s: float | None = None
    # The user's code in the model: each component's import path, parameters and source sha256 (mlops.components).
    components: list[dict[str, Any]] = Field(default_factory=list)


class ExportResult(StepResult):
    onnx: ArtifactRefDict
    size_bytes: int = 0
    inputs: int = 0
    features: ArtifactRefDict | None = None  # the feature components' probe graph, for their parity check


class EvaluateResult(StepResult):
    evaluation: ArtifactRefDict
    report: ArtifactRefDict
    reference: ArtifactRefDict
    metric: str | None = None
    value: float | None = None
    metrics: Metrics = Field(default_factory=dict)


class ValidateModelResult(StepResult):
    blessed: bool
    report: ArtifactRefDict
    reasons: list[str] = Field(default_factory=list)
    metric: str | None = None
    value: float | None = None
    champion_version: int | None = None
    champion_value: float | None = None


class RegisterResult(StepResult):
    version: int
    status: str
    promoted: bool
    alias: str | None = None
