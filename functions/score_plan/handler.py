"""Lambda: score_plan — a batch scoring job's shards (its input's tables, large ones as row ranges), for the
Distributed Map to read."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.core.scoring import ScoringJob
from mlops.steps.score import plan_job
from mlops.wiring.handlers import stores, transient_errors
from mlops.wiring.runtime import model_config

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(correlation_id_path="job_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    job = parse(event=event, model=ScoringJob)
    result = plan_job(stores(), model_config(job.model), job)
    metrics.add_metric(name="ScoringShards", unit=MetricUnit.Count, value=result.count)
    return result.as_state()
