"""The project configuration: one YAML file a user edits to point the system at data and a model.

Validated on load with pydantic; an invalid file raises :class:`ConfigError` whose message names
each bad field (as a dotted path) and what to do about it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlops.core.constants import SCORE_PREFIX

if TYPE_CHECKING:
    from mlops.core.feature_sets import FeatureSets


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid."""


class Task(StrEnum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"


class DataFormat(StrEnum):
    AUTO = "auto"
    CSV = "csv"
    PARQUET = "parquet"
    JSONL = "jsonl"


class FeatureType(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


HIGHER_IS_BETTER = {
    "roc_auc": True,
    "accuracy": True,
    "balanced_accuracy": True,
    "f1_macro": True,
    "precision_macro": True,
    "recall_macro": True,
    "log_loss": False,
    "r2": True,
    "rmse": False,
    "mae": False,
    "mape": False,
}
CLASSIFICATION_METRICS = {
    "roc_auc",
    "accuracy",
    "balanced_accuracy",
    "f1_macro",
    "precision_macro",
    "recall_macro",
    "log_loss",
}
REGRESSION_METRICS = {"r2", "rmse", "mae", "mape"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """Where the training data lands and how to read it."""

    prefix: str = Field(
        description="Key prefix in the landing bucket under which data files are uploaded, e.g. 'breast-cancer/'."
    )
    bucket: str | None = Field(
        default=None,
        description="Bucket to read from; defaults to the stack's landing bucket (env MLOPS_LANDING_BUCKET).",
    )
    format: DataFormat = DataFormat.AUTO
    scope: Literal["object", "prefix"] = Field(
        default="object",
        description="'object': an upload trains on that object alone; 'prefix': on every file under prefix.",
    )
    suffixes: tuple[str, ...] = (".csv", ".parquet", ".jsonl", ".json")
    max_bytes: int = Field(default=256 * 1024 * 1024, gt=0, description="Size guard for one extraction.")
    max_rows: int | None = Field(
        default=None,
        gt=0,
        description="Deprecated and ignored: extract no longer counts rows before it reads. It checks the objects' "
        "sizes against data.max_bytes and against the ephemeral storage it has; kept so configs that set it load.",
    )
    shards: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="The shards the statistics fan out over (a Step Functions Distributed Map, one function per "
        "shard, merged after): set it to force a number; unset, a snapshot of more than data.shard_rows rows is "
        "split into as many shards as it takes to hold each to that many (1: one pass in one function).",
    )
    shard_rows: int = Field(
        default=2_000_000,
        gt=0,
        description="The most rows one function's statistics are computed over when data.shards is unset. analyze "
        "measured ~13 s per million rows of 25 columns (docs/benchmarks.md): 2M rows is ~30 s of its 300 s "
        "timeout, while one pass over 20M would be ~270 s.",
    )
    sample: str | None = Field(
        default=None,
        description="A sample of the model's data in the project, relative to it (`mlops run --sample`, `mlops demo`, "
        "`mlops component check --all`).",
    )

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if v.startswith("/") or v.startswith("s3://"):
            raise ValueError("give a key prefix inside the bucket, e.g. 'my-model/', not a path or URI")
        return v

    def shard_count(self, rows: int) -> int:
        """The shards a snapshot of ``rows`` rows fans out over (1: analyzed in one pass)."""
        if self.shards is not None:
            return max(1, min(self.shards, rows))
        return max(1, -(-rows // self.shard_rows))


class FeatureOverride(_Strict):
    type: FeatureType | None = None
    drop: bool = False
    compare: bool = Field(
        default=True,
        description="False: the column's values are not compared with earlier data — no domain, no drift — as for a "
        "date or other text the model reads only through a feature component (new every day, never 'drifted').",
    )


# A component's import path: 'package.module:Class'.
IMPORT_PATH = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"


class FeatureStep(_Strict):
    """One feature component of the model's pipeline (see ``mlops.components``)."""

    component: str = Field(pattern=IMPORT_PATH, description="Import path of the class: 'package.module:Class'.")
    params: dict[str, Any] = Field(default_factory=dict, description="Its constructor's keyword arguments.")
    drop_inputs: bool = Field(
        default=False, description="Its input columns are not features themselves (a raw timestamp, say)."
    )


class FeaturesConfig(_Strict):
    overrides: dict[str, FeatureOverride] = Field(default_factory=dict)
    steps: tuple[FeatureStep, ...] = Field(
        default=(), description="Feature components, in order, before the built-in preprocessing."
    )
    slice_by: tuple[str, ...] = Field(default=(), description="Columns to slice evaluation metrics by.")


class SplitConfig(_Strict):
    train: float = Field(default=0.7, gt=0, lt=1)
    validation: float = Field(default=0.15, gt=0, lt=1)
    test: float = Field(default=0.15, gt=0, lt=1)
    seed: int = 42

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitConfig:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must sum to 1.0 (got {total:.3f})")
        return self


class RandomRange(_Strict):
    """A numeric range sampled by random search."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> RandomRange:
        if self.high <= self.low:
            raise ValueError("high must be greater than low")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


ParamSpace = list[Any] | RandomRange


class Family(StrEnum):
    LOGISTIC_REGRESSION = "logistic_regression"
    LINEAR = "linear"  # Ridge for regression
    RANDOM_FOREST = "random_forest"
    EXTRA_TREES = "extra_trees"
    GRADIENT_BOOSTING = "gradient_boosting"  # HistGradientBoosting
    LIGHTGBM = "lightgbm"  # LGBMClassifier / LGBMRegressor, exported with onnxmltools


class Candidate(_Strict):
    family: str = Field(description="A built-in family, or a model component's import path ('package.module:Class').")
    params: dict[str, ParamSpace] = Field(default_factory=dict)

    @field_validator("family")
    @classmethod
    def _family(cls, v: str) -> str:
        if v in {f.value for f in Family} or re.match(IMPORT_PATH, v):
            return v
        names = ", ".join(f.value for f in Family)
        raise ValueError(f"{v!r} is neither a built-in family ({names}) nor an import path 'package.module:Class'")


class SearchConfig(_Strict):
    strategy: Literal["grid", "random"] = "grid"
    max_trials: int = Field(default=24, gt=0, le=200)


# Fargate's task sizes: vCPU units → (smallest, largest, step) memory in MiB (AWS's table of valid combinations).
FARGATE_SIZES: dict[int, tuple[int, int, int]] = {
    256: (512, 2048, 512),
    512: (1024, 4096, 1024),
    1024: (2048, 8192, 1024),
    2048: (4096, 16384, 1024),
    4096: (8192, 30720, 1024),
    8192: (16384, 61440, 4096),
    16384: (32768, 122880, 8192),
}


class FargateConfig(_Strict):
    """The ECS Fargate task that refits the chosen candidate when the training split outgrows a Lambda."""

    cpu: int = Field(default=4096, description="vCPU units: 256, 512, 1024, 2048, 4096, 8192 or 16384.")
    memory_mb: int = Field(default=30720, description="MiB, a size Fargate allows for the cpu (up to 122,880).")
    ephemeral_gb: int = Field(default=50, ge=21, le=200, description="Task storage for the splits (GiB).")
    timeout_s: int = Field(default=4 * 3600, ge=60, le=86_400, description="The refit's time limit.")
    spot: bool = Field(default=False, description="Run on Fargate Spot (up to ~70 % cheaper; may be reclaimed).")

    @model_validator(mode="after")
    def _valid_size(self) -> FargateConfig:
        if self.cpu not in FARGATE_SIZES:
            raise ValueError(f"cpu={self.cpu}: Fargate runs {', '.join(map(str, FARGATE_SIZES))} vCPU units")
        low, high, step = FARGATE_SIZES[self.cpu]
        if not low <= self.memory_mb <= high or (self.memory_mb - low) % step:
            raise ValueError(
                f"memory_mb={self.memory_mb}: with cpu={self.cpu} Fargate allows {low}-{high} MiB in steps of {step}"
            )
        return self


class TrainingConfig(_Strict):
    candidates: tuple[Candidate, ...] = Field(min_length=1)
    search: SearchConfig = SearchConfig()
    max_concurrency: int = Field(default=4, gt=0, le=40, description="Parallel trials in the tuning Map.")
    compute: Literal["lambda", "fargate", "auto"] = Field(
        default="auto",
        description="Where the chosen candidate is refit: auto = Lambda while the training split fits run_trial's "
        "memory, else an ECS Fargate task.",
    )
    fargate: FargateConfig = FargateConfig()
    tune_rows: int = Field(
        default=1_000_000,
        ge=1_000,
        description="On the Fargate path, trials fit a stratified sample of this many training rows (and score a "
        "validation sample in proportion); the chosen candidate is refit on all of them.",
    )


class ParityConfig(_Strict):
    """ONNX vs scikit-learn on the test split: a row disagrees if its label differs or a probability
    (relative value for regression) differs by more than ``atol``."""

    atol: float = Field(default=1e-3, gt=0)
    max_mismatch_rate: float = Field(default=0.01, ge=0, le=1)


class GatesConfig(_Strict):
    min: dict[str, float] = Field(default_factory=dict, description="Metric floors (higher-is-better).")
    max: dict[str, float] = Field(default_factory=dict, description="Metric ceilings (lower-is-better).")
    max_regression: float = Field(
        default=0.0,
        ge=0,
        description="Largest allowed loss on the primary metric vs the champion re-scored on the same test set.",
    )
    baseline_margin: float = Field(
        default=0.02,
        ge=0,
        description="Smallest lift on the primary metric over a trivial model (majority class / mean) on the same "
        "test split — a difference for higher-is-better metrics, a share of the trivial model's error for "
        "lower-is-better ones — and the lift's 95% bootstrap lower bound must be above 0. Applies to the first "
        "model too.",
    )


class InfraCheckConfig(_Strict):
    latency_budget_ms: float = Field(default=50.0, gt=0, description="Single-row p50 in the serving runtime.")
    atol: float = Field(default=1e-4, gt=0)


class EvaluationConfig(_Strict):
    primary_metric: str | None = Field(
        default=None, description="Defaults to roc_auc (classification) or rmse (regression)."
    )
    gates: GatesConfig = GatesConfig()
    parity: ParityConfig = ParityConfig()
    infra: InfraCheckConfig = InfraCheckConfig()


class DriftConfig(_Strict):
    default_threshold: float = Field(default=0.2, gt=0, description="PSI (numeric) / JS distance (categorical).")
    features: dict[str, float] = Field(default_factory=dict)
    severity: Literal["error", "warning"] = "error"


class ValidationConfig(_Strict):
    min_rows: int = Field(default=50, ge=1)
    max_missing_rate_increase: float = Field(default=0.1, ge=0, le=1)
    max_out_of_range_fraction: float = Field(default=0.05, ge=0, le=1)
    max_unseen_category_fraction: float = Field(default=0.05, ge=0, le=1)
    max_rejected_object_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="The share of a run's objects that may be unusable on their own (unreadable, a column missing "
        "or of the wrong type) while the run goes on with the rest: each is named and quarantined. Above it the run "
        "fails naming every one (a share that large is more likely a changed export than a few bad files).",
    )
    label_changes: Literal["reject", "approve", "accept"] = Field(
        default="reject",
        description="A batch whose target labels differ from the champion's (labels that appear or vanish): "
        "'reject' fails the run (LABEL_SET_CHANGED); 'approve' goes on, and a blessed candidate waits for "
        "`mlops models approve` whatever registry.approval says; 'accept' goes on and promotes as usual. Either "
        "way the candidate is not compared with a champion that never knew its labels.",
    )
    drift: DriftConfig = DriftConfig()


class MonitoringConfig(_Strict):
    """D1-D5: what is captured from serving, how the monitor judges a window, and what an alarm does."""

    capture_sample: float = Field(
        default=1.0, ge=0, le=1, description="Share of prediction requests captured (0 turns capture off)."
    )
    schedule: str | None = Field(
        default="rate(1 hour)",
        description="EventBridge schedule of the monitor; each run judges the window ending then. None: on demand.",
    )
    window_hours: float = Field(default=24, gt=0, le=24 * 14, description="Captured traffic judged per run.")
    min_samples: int = Field(
        default=100, ge=1, description="A window with fewer captured records is not judged (no drift, no quality)."
    )
    min_labels: int = Field(default=50, ge=1, description="Live quality needs at least this many labelled records.")
    quality_metric: str | None = Field(
        default=None, description="Live quality metric; defaults to accuracy (classification) or rmse (regression)."
    )
    quality_margin: float = Field(
        default=0.05,
        gt=0,
        description="Quality alarm: live metric worse than the champion's test metric by more than this "
        "(absolute for higher-is-better metrics, relative for errors such as rmse).",
    )
    estimate_margin: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="Estimated-quality alarm (classifiers): accuracy estimated before labels, from calibrated "
        "probabilities, below the champion's test accuracy by more than this.",
    )
    drift_min_features: int = Field(default=1, ge=1, description="Drift alarm: at least this many drifted features.")
    alarm_windows: int = Field(
        default=2,
        ge=1,
        le=24,
        description="Consecutive judged windows that must breach before the drift or quality alarm fires.",
    )
    retrain_on_alarm: bool = Field(
        default=True, description="Drift, quality and estimated-quality alarms start a retraining run."
    )
    cooldown_hours: float = Field(default=24, ge=0, description="No second alarm-started run within this long.")
    train_on_feedback: bool = Field(
        default=True, description="An alarm-started run also trains on captured traffic that has labels."
    )
    latency_p99_ms: float = Field(default=500, gt=0, description="Serving latency alarm (API Gateway p99).")
    error_rate: float = Field(default=0.01, gt=0, le=1, description="Serving 5xx alarm: share of requests.")
    capture_retention_days: int = Field(default=90, ge=1, description="Captured traffic and labels expire after.")
    challenger_max_disagreement: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="C4: a shadow challenger whose answers differ from the champion's on more than this share of a "
        "judged window's records is withdrawn (its disagreement alarm).",
    )
    challenger_max_latency_ratio: float = Field(
        default=3.0,
        gt=1,
        description="C4: a challenger whose median handler time exceeds the champion's by this factor in a judged "
        "window is withdrawn (its latency alarm). Its live quality alarm uses quality_margin against the champion's "
        "live metric on the same window's labels (at least min_labels on each side).",
    )


class ServingConfig(_Strict):
    """This model's share of the prediction API: API Gateway throttles its routes (``/models/<name>/…``) on
    their own, so one model's traffic cannot starve another's."""

    rate_limit: float | None = Field(
        default=None, gt=0, description="Steady requests per second; default: the stage's rate over the models."
    )
    burst_limit: int | None = Field(default=None, gt=0, description="Default: the stage's burst over the models.")


class ScoringConfig(_Strict):
    """Batch scoring (S3 to S3): uploads under the scoring prefix are scored by the champion, as ``/predict`` scores."""

    prefix: str | None = Field(
        default=None,
        description="Key prefix in the landing bucket under which files to score are uploaded; default "
        "'score/<model>/'. A file directly under it starts a job for that file; files in a folder under it wait "
        "for the folder's `_SUCCESS` marker, which starts one job over every file of the folder.",
    )
    max_error_share: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="A job whose share of bad rows (each written with the error /predict gives) exceeds this fails, "
        "naming it; its parts are kept.",
    )
    tolerated_failed_shards: float = Field(
        default=0,
        ge=0,
        le=100,
        description="Percentage of shards that may fail (after their retries) without failing the job; the "
        "manifest names each one and its rows. 0: any failed shard fails the job.",
    )
    shard_bytes: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="An input object larger than this is scored as several shards, each a row range of it.",
    )
    capture_sample: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Share of scored rows captured for the monitor; default: monitoring.capture_sample.",
    )

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str | None) -> str | None:
        if v is not None and (v.startswith("/") or v.startswith("s3://") or not v.endswith("/")):
            raise ValueError("give a key prefix inside the bucket ending in '/', e.g. 'score/my-model/'")
        return v


class ChallengerPolicy(_Strict):
    """C4: promote a challenger without a person once live labels show it does not regress."""

    min_labels: int = Field(ge=1, description="Labelled records the challenger answered (or shadowed) in a window.")
    max_regression: float = Field(
        default=0.0,
        ge=0,
        description="Largest allowed shortfall of the challenger's live metric against the champion's on the same "
        "window (the quality alarm's units: a difference for scores, relative for errors).",
    )


class RegistryConfig(_Strict):
    approval: Literal["auto", "manual"] = "auto"
    challenger_auto_promote: ChallengerPolicy | None = Field(
        default=None,
        description="None: a challenger becomes champion only by hand (mlops models promote).",
    )


class FeatureSetUse(_Strict):
    """Features a model takes from a feature set (``feature_sets/<name>.yaml``): its uploads then carry the set's
    entity key, the label and the label's event time (``time_column``), and extract joins the set's values as of
    that time."""

    name: str = Field(description="The feature set's name.")
    features: tuple[str, ...] | None = Field(default=None, description="The features taken; default: all of them.")
    on_missing: Literal["reject", "default"] = Field(
        default="reject",
        description="Serving, an entity the online store has no live value for: 'reject' answers 404 naming the "
        "entity; 'default' scores it with the features missing (imputed in the graph with the training default) "
        "and says so in the answer.",
    )


class ProjectConfig(_Strict):
    """The whole project configuration (``mlops.yaml``)."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,47}$", description="Model name.")]
    data: DataConfig
    target: str
    task: Task | None = Field(default=None, description="Inferred from the target column when omitted.")
    id_column: str | None = None
    time_column: str | None = None
    features: FeaturesConfig = FeaturesConfig()
    split: SplitConfig = SplitConfig()
    training: TrainingConfig
    evaluation: EvaluationConfig = EvaluationConfig()
    validation: ValidationConfig = ValidationConfig()
    registry: RegistryConfig = RegistryConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    serving: ServingConfig = ServingConfig()
    scoring: ScoringConfig = ScoringConfig()
    feature_sets: tuple[FeatureSetUse, ...] = Field(
        default=(), description="Features joined point-in-time from feature sets, and looked up at serving."
    )
    schedule: str | None = Field(
        default=None, description="EventBridge schedule expression for periodic retraining, e.g. 'rate(7 days)'."
    )

    @model_validator(mode="after")
    def _metric_known(self) -> ProjectConfig:
        metric = self.evaluation.primary_metric
        if metric is not None and metric not in HIGHER_IS_BETTER:
            raise ValueError(f"evaluation.primary_metric '{metric}' is unknown; use one of {sorted(HIGHER_IS_BETTER)}")
        for gate in (*self.evaluation.gates.min, *self.evaluation.gates.max):
            if gate not in HIGHER_IS_BETTER:
                raise ValueError(f"evaluation.gates: unknown metric '{gate}'; use one of {sorted(HIGHER_IS_BETTER)}")
        quality = self.monitoring.quality_metric
        if quality is not None and quality not in HIGHER_IS_BETTER:
            raise ValueError(f"monitoring.quality_metric '{quality}' is unknown; use one of {sorted(HIGHER_IS_BETTER)}")
        if self.target in {self.id_column, self.time_column}:
            raise ValueError("target must differ from id_column and time_column")
        return self

    @property
    def scoring_prefix(self) -> str:
        """Where this model's files to score land (``scoring.prefix``, or ``score/<name>/``)."""
        return self.scoring.prefix or f"{SCORE_PREFIX}{self.name}/"

    @property
    def scoring_capture_sample(self) -> float:
        sample = self.scoring.capture_sample
        return self.monitoring.capture_sample if sample is None else sample

    def primary_metric_for(self, task: Task) -> str:
        return _metric_for(task, "evaluation.primary_metric", self.evaluation.primary_metric, "roc_auc")

    def quality_metric_for(self, task: Task) -> str:
        """The live-quality metric: one that is defined on any labelled window (not roc_auc, which needs
        both classes present)."""
        return _metric_for(task, "monitoring.quality_metric", self.monitoring.quality_metric, "accuracy")

    def compared(self, feature: str) -> bool:
        """Whether a feature's values are compared with earlier data (its domain, its drift)."""
        override = self.features.overrides.get(feature)
        return override is None or override.compare

    def drift_threshold(self, feature: str) -> float:
        return self.validation.drift.features.get(feature, self.validation.drift.default_threshold)

    def config_hash(self) -> str:
        # A model that takes no feature set hashes as it did before the field existed: its deployed catalog and
        # registry records keep their hashes.
        dumped = self.model_dump(mode="json", exclude=None if self.feature_sets else {"feature_sets"})
        canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _metric_for(task: Task, field: str, chosen: str | None, classification_default: str) -> str:
    """The metric ``field`` names (or its default: rmse for regression), checked against the task."""
    metric = chosen or ("rmse" if task is Task.REGRESSION else classification_default)
    allowed = REGRESSION_METRICS if task is Task.REGRESSION else CLASSIFICATION_METRICS
    if metric not in allowed:
        raise ConfigError(f"{field}: '{metric}' does not apply to a {task.value} task; use one of {sorted(allowed)}")
    return metric


def _field_path(loc: tuple[Any, ...]) -> str:
    """The user's field path, without pydantic's own steps (``list[any]``, ``function-after[…]``)."""
    parts = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]
    return ".".join(parts) or "(top level)"


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    seen: set[str] = set()
    for e in err.errors():
        loc = _field_path(e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field; remove it or check its spelling"
        elif e["type"] == "missing":
            msg = "required field is missing; add it"
        elif ".params." in f".{loc}." and len(e["loc"]) >= 5:
            # a union of "list of values" and "range": one message, with the fix
            msg = "a hyperparameter takes a list of values (e.g. [100] or [100, 300]) or a range {low: …, high: …}"
        if loc in seen:
            continue
        seen.add(loc)
        lines.append(f"  - {loc}: {msg}")
    return "\n".join(lines)


def parse_config(raw: dict[str, Any], source: str = "<dict>") -> ProjectConfig:
    try:
        return ProjectConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def load_config(path: str | Path) -> ProjectConfig:
    """Read and validate a YAML project configuration."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {p}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{p} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of fields")
    return parse_config(raw, str(p))


def config_document(config: ProjectConfig) -> str:
    """The config as deployed: compact JSON of the validated fields that differ from their defaults."""
    return json.dumps(config.model_dump(mode="json", exclude_defaults=True), sort_keys=True, separators=(",", ":"))


def parse_config_document(document: str, source: str) -> ProjectConfig:
    try:
        raw = json.loads(document)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{source} is not a config document: {err}") from None
    return parse_config(raw, source)


class ModelSet:
    """The models of one project (one deployment): each model's validated config, by name, with the file it
    came from. Checked together: unique names, and data prefixes no upload could fall under twice."""

    def __init__(self, configs: list[tuple[str, ProjectConfig]], feature_sets: FeatureSets | None = None) -> None:
        from mlops.core.feature_sets import FeatureSets, check_uses

        if not configs:
            raise ConfigError("no model configurations: give at least one YAML file (or a folder of them)")
        self.sources: dict[str, str] = {}
        self.configs: dict[str, ProjectConfig] = {}
        for source, config in configs:
            if config.name in self.configs:
                raise ConfigError(
                    f"{source}: name: model '{config.name}' is also defined in {self.sources[config.name]}; "
                    "each model needs a unique name"
                )
            for name, other in self.configs.items():
                overlap = _prefix_overlap(config.data, other.data)
                if overlap:
                    raise ConfigError(
                        f"{source}: data.prefix: '{config.data.prefix}' overlaps '{other.data.prefix}' of model "
                        f"'{name}' ({self.sources[name]}): an upload under {overlap} would belong to both; give "
                        "each model its own prefix"
                    )
            self.sources[config.name] = source
            self.configs[config.name] = config
        for config in self.configs.values():
            for other in self.configs.values():
                uploads = (other.data.bucket is None) and (
                    config.scoring_prefix.startswith(other.data.prefix)
                    or other.data.prefix.startswith(config.scoring_prefix)
                )
                scores = other is not config and other.scoring_prefix.startswith(config.scoring_prefix)
                if uploads or scores:
                    clash = (
                        f"data.prefix '{other.data.prefix}'" if uploads else f"scoring.prefix '{other.scoring_prefix}'"
                    )
                    raise ConfigError(
                        f"{self.sources[config.name]}: scoring.prefix: '{config.scoring_prefix}' overlaps {clash} of "
                        f"model '{other.name}': an upload there would be both; give each its own prefix"
                    )
        self.feature_sets = feature_sets if feature_sets is not None else FeatureSets()
        check_uses(self, self.feature_sets)

    @property
    def names(self) -> list[str]:
        return list(self.configs)

    def __iter__(self) -> Any:
        return iter(self.configs.values())

    def __len__(self) -> int:
        return len(self.configs)

    def get(self, name: str) -> ProjectConfig:
        try:
            return self.configs[name]
        except KeyError:
            raise UnknownModelError(name, self.names) from None

    def choose(self, name: str | None) -> ProjectConfig:
        """The model named, or the only one; a clear error when the choice is ambiguous."""
        if name is not None:
            return self.get(name)
        if len(self.configs) == 1:
            return next(iter(self.configs.values()))
        raise ConfigError(f"this project has {len(self.configs)} models ({', '.join(self.names)}): name one")

    def for_scoring(self, bucket: str, key: str, landing_bucket: str) -> ProjectConfig | None:
        """The model whose scoring prefix (in the landing bucket) an uploaded object falls under."""
        if bucket != landing_bucket:
            return None
        return next((c for c in self.configs.values() if key.startswith(c.scoring_prefix)), None)

    def for_object(self, bucket: str, key: str, landing_bucket: str) -> ProjectConfig | None:
        """The model whose data prefix an uploaded object falls under (prefixes never overlap)."""
        for config in self.configs.values():
            if (config.data.bucket or landing_bucket) == bucket and key.startswith(config.data.prefix):
                return config
        return None


class UnknownModelError(ConfigError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown model '{name}'; this deployment has: {', '.join(known)}")
        self.name, self.known = name, known


def _prefix_overlap(a: DataConfig, b: DataConfig) -> str | None:
    """Where two models' uploads could collide (same bucket, one prefix inside the other), or None."""
    if a.bucket != b.bucket:
        return None
    if a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix):
        return f"'{max(a.prefix, b.prefix, key=len)}'"
    return None


def model_files(paths: Sequence[str | Path]) -> list[Path]:
    """YAML files named, and every ``*.yaml`` / ``*.yml`` in the folders named (sorted)."""
    files: list[Path] = []
    for item in paths:
        p = Path(item)
        if p.is_dir():
            found = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
            if not found:
                raise ConfigError(f"{p}: the folder holds no model configurations (*.yaml)")
            files += found
        else:
            files.append(p)
    return files


def load_models(paths: Sequence[str | Path], feature_set_paths: Sequence[str | Path] = ()) -> ModelSet:
    """Every model of a project, validated one by one and then together, with the feature sets they use."""
    from mlops.core.feature_sets import load_feature_sets

    return ModelSet([(str(f), load_config(f)) for f in model_files(paths)], load_feature_sets(feature_set_paths))
