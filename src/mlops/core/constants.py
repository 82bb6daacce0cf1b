"""Names defined once and imported by infra, handlers, the emulator and tests."""

from __future__ import annotations

from dataclasses import dataclass

# Environment variables read by the runtime (never at import time; see mlops.wiring.runtime).
ENV_ARTIFACT_BUCKET = "MLOPS_ARTIFACT_BUCKET"
ENV_LANDING_BUCKET = "MLOPS_LANDING_BUCKET"
ENV_RUNS_TABLE = "MLOPS_RUNS_TABLE"
ENV_MODELS_TABLE = "MLOPS_MODELS_TABLE"
ENV_LINEAGE_TABLE = "MLOPS_LINEAGE_TABLE"
ENV_CONFIG_URI = "MLOPS_CONFIG_URI"  # local files, comma-separated (tests, tools); deployed: the catalog
ENV_CATALOG_PARAMETER = "MLOPS_CATALOG_PARAMETER"  # the SSM parameter naming every model's config parameter
ENV_CATALOG_HASH = "MLOPS_CATALOG_HASH"  # the catalog's hash the function was deployed with
ENV_STATE_MACHINE_ARN = "MLOPS_STATE_MACHINE_ARN"
ENV_SCORING_STATE_MACHINE_ARN = "MLOPS_SCORING_STATE_MACHINE_ARN"  # batch scoring jobs (the trigger starts them)
ENV_MODEL_CACHE_SECONDS = "MLOPS_MODEL_CACHE_SECONDS"
ENV_MODEL_CACHE_MB = "MLOPS_MODEL_CACHE_MB"  # the loaded models' memory bound (LRU beyond it)
ENV_MAX_ROWS = "MLOPS_MAX_PREDICT_ROWS"
ENV_EVENT_BUS = "MLOPS_EVENT_BUS"  # where a function that makes a fact publishes it (unset: it publishes nothing)
ENV_EVENT_SOURCE = "MLOPS_EVENT_SOURCE"  # the events' source (the IAM policy allows only this one)
ENV_ENVIRONMENT = "MLOPS_ENVIRONMENT"  # the deployment's name (dev, staging, prod), in every event
DEFAULT_EVENT_SOURCE = "serverless-mlops"
ENV_FUNCTION = "MLOPS_FUNCTION"  # the folder under functions/ a Lambda runs (the emulator routes by it)
ENV_FUNCTION_MEMORY = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"  # set by Lambda (and the emulator): the function's MB
ENV_TRIAL_MEMORY = "MLOPS_TRIAL_MEMORY_MB"  # run_trial's MemorySize, for plan_trials to check a run fits it
# One-hot columns a categorical feature becomes at most: its most frequent categories, and one column for the rest
# (scikit-learn's infrequent category; skl2onnx converts it). A column of 50,000 ids would otherwise be 50,000
# dense columns of every row: no trial, refit or task holds that.
ONE_HOT_MAX_CATEGORIES = 100
ENV_DATA_MEMORY_SHARE = "MLOPS_DATA_MEMORY_SHARE"  # the share of it the data steps' DuckDB may hold (0-1]
# What the state machine sends a step as the run starts, beside the earlier steps, waiting for the answer: the
# function's execution environment initializes while they work, and is idle and warm when its step comes.
WARM_UP_EVENT = {"warm_up": True}
# The run's input field (set by the trigger) saying how many trial environments to warm: as many as the model's plan
# runs at once (its max_concurrency, or its trial count if fewer).
WARM_TRIALS_FIELD = "warm_trials"


@dataclass(frozen=True)
class TableSchema:
    """A DynamoDB table's key schema: string partition key ``pk`` and sort key ``sk``."""

    logical_id: str
    partition_key: str = "pk"
    sort_key: str = "sk"


RUNS_TABLE = TableSchema("RunsTable")
MODELS_TABLE = TableSchema("ModelsTable")
LINEAGE_TABLE = TableSchema("LineageTable")
TABLES = (RUNS_TABLE, MODELS_TABLE, LINEAGE_TABLE)
# The feature store's online table: pk = the feature set, sk = the entity; items expire by this attribute (TTL).
FEATURES_TABLE = TableSchema("FeaturesTable")
FEATURES_TTL_ATTRIBUTE = "expires_at"
ENV_FEATURES_TABLE = "MLOPS_FEATURES_TABLE"  # set on the functions that read or write the online store
ENV_FEATURE_SETS_URI = "MLOPS_FEATURE_SETS_URI"  # local files, comma-separated (tests, tools); deployed: the catalog

# Artifact bucket layout. Only runs/ expires (run scratch); a registered version's artifacts are copied
# under models/ at registration and kept for as long as the version is in the registry.
RUNS_PREFIX = "runs/"
SCHEMAS_PREFIX = "schemas/"
MODELS_PREFIX = "models/"
# D1-D3: captured predictions and labels (shipped from the serve function's log), and the monitor's results.
# Partitioned by model and date: captures/<model>/date=YYYY-MM-DD/<hour>-<delivery>.jsonl.
CAPTURES_PREFIX = "captures/"
FEEDBACK_PREFIX = "feedback/"
MONITORING_PREFIX = "monitoring/"
# Batch scoring: files to score land under score/<model>/ in the landing bucket (scoring.prefix); each job writes
# scored/<model>/<job>/part-N.parquet, manifest.json and _SUCCESS in the artifact bucket.
SCORE_PREFIX = "score/"
SCORED_PREFIX = "scored/"
SUCCESS_MARKER = "_SUCCESS"  # a folder's marker (Spark's, Hadoop's): its files are complete
# Each model's static report site (mlops.reports.site), rebuilt when a run ends and when a window is judged.
SITES_PREFIX = "sites/"
# The feature store's offline store: features/<set>/date=YYYY-MM-DD/<object>.parquet, and each ingested object's
# receipt under features/<set>/_ingested/ (what makes an ingestion idempotent).
FEATURES_PREFIX = "features/"

# Capture: the serve function writes one JSON line per request to its log; the log's subscription filter
# matches on this field, and the capture function ships matching lines to S3.
CAPTURE_FIELD = "mlops"
CAPTURE_KIND = "capture"
FEEDBACK_KIND = "feedback"

# CloudWatch: the namespace of every custom metric, and the monitor's metric names (alarms use them).
METRICS_NAMESPACE = "ServerlessMLOps"
METRIC_RECORDS = "MonitoredRecords"
METRIC_LABELLED = "LabelledRecords"
METRIC_DRIFTED_FEATURES = "DriftedFeatures"
METRIC_DRIFT_SCORE = "DriftScore"
METRIC_PREDICTION_DRIFT = "PredictionDrift"
METRIC_QUALITY_ERRORS = "DataQualityErrors"
METRIC_LIVE_QUALITY = "LiveQuality"
METRIC_QUALITY_SHORTFALL = "QualityShortfall"
# Performance estimated before labels arrive (confidence-based, from calibrated probabilities; classifiers).
METRIC_ESTIMATED_ACCURACY = "EstimatedAccuracy"
METRIC_ESTIMATED_ROC_AUC = "EstimatedRocAuc"
METRIC_ESTIMATED_SHORTFALL = "EstimatedShortfall"  # the champion's test accuracy minus the estimated accuracy
# C4: a challenger's health. Errors: the serve function (EMF, per request the challenger could not answer);
# disagreement and records: the monitor, per judged window.
METRIC_CHALLENGER_ERRORS = "ChallengerErrors"
METRIC_CHALLENGER_DISAGREEMENT = "ChallengerDisagreement"
METRIC_CHALLENGER_RECORDS = "ChallengerRecords"
METRIC_CHALLENGER_QUALITY_SHORTFALL = "ChallengerQualityShortfall"  # champion's live metric minus the challenger's
METRIC_CHALLENGER_LATENCY_RATIO = "ChallengerLatencyRatio"  # challenger's median handler time ÷ the champion's
# The feature store: rows each ingestion appended (EMF from the ingestion function, by FeatureSet); and from the
# monitor, by FeatureSet: the age of the set's newest value (its staleness alarm) and the online/offline skew score
# (the largest skew ÷ drift threshold over its features: its skew alarm).
METRIC_FEATURE_ROWS_INGESTED = "FeatureRowsIngested"
METRIC_FEATURE_AGE_HOURS = "FeatureAgeHours"
METRIC_FEATURE_SKEW = "FeatureSkewScore"
SERVICE_NAME = "serverless-mlops"  # Powertools' service: a dimension of the metrics the functions emit

# The run budget, one source for the state machine (infra) and the run lock (trigger): the lock must
# outlive every path through an execution, including the manual-approval wait.
RUN_TIMEOUT_S = 4 * 3600  # everything but the approval wait
APPROVAL_TIMEOUT_S = 7 * 24 * 3600
STATE_MACHINE_TIMEOUT_S = RUN_TIMEOUT_S + APPROVAL_TIMEOUT_S
RUN_LOCK_SECONDS = STATE_MACHINE_TIMEOUT_S + 3600

# Registry aliases.
CHAMPION = "champion"
CHALLENGER = "challenger"  # C4: tried beside the champion (canary: a share of traffic; shadow: scored, never returned)
CANARY, SHADOW = "canary", "shadow"

# One environment's stacks, Mlops-<env>-<suffix> (the platform client reads their outputs).
STACK_SUFFIXES = ("Storage", "Pipeline", "Triggers", "Serving", "Monitoring")


def model_output_key(kind: str, model: str) -> str:
    """A per-model stack output's key, e.g. ``DriftAlarmBreastCancer`` (the CLI finds a model's alarms by it)."""
    return kind + "".join(part.title() for part in model.split("-"))


# The training task on ECS Fargate (the refit past one Lambda): the state machine writes the train step's input
# (its state) to this key of the run, names the run in the task's environment, and reads the step's result back.
ENV_TASK_RUN_ID = "MLOPS_TASK_RUN_ID"
TASK_INPUT_NAME, TASK_RESULT_NAME = "task-input.json", "task-result.json"  # under runs/<run_id>/train/
TASK_CONTAINER = "train"  # the task definition's one container
