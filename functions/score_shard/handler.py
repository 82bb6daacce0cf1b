"""Lambda: score_shard — one child of a scoring job's Distributed Map: its shards scored by the job's pinned
version through /predict's checks and ONNX session, each into its Parquet part."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.core.scoring import ShardInput
from mlops.serving.batch import pinned_model
from mlops.steps.score import score_shards
from mlops.wiring.handlers import stores, transient_errors
from mlops.wiring.runtime import model_config

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(correlation_id_path="BatchInput.job_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@transient_errors
def handler(event: dict, context: LambdaContext) -> list[dict]:
    req = parse(event=event, model=ShardInput)
    loaded = pinned_model(stores().meta, stores().artifacts, req.job.model, req.job.version)
    results = score_shards(stores(), model_config(req.job.model), req, loaded)
    metrics.add_metric(name="ScoredRows", unit=MetricUnit.Count, value=sum(r.rows_out for r in results))
    metrics.add_metric(name="ScoredRowErrors", unit=MetricUnit.Count, value=sum(r.errors for r in results))
    return [r.as_state() for r in results]
