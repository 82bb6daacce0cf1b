"""Lambda: score_finish — a batch scoring job checked (rows out = rows in, one part per shard, the error share) and
closed: its manifest, _SUCCESS, its record and the model's site."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.core.scoring import FinishInput
from mlops.steps.score import finish_job
from mlops.wiring.handlers import stores, transient_errors
from mlops.wiring.runtime import model_config, models_from_env

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(correlation_id_path="job_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    req = parse(event=event, model=FinishInput)
    outcome = finish_job(stores(), model_config(req.model), req, models_from_env())
    metrics.add_metric(name=f"ScoringJobs{outcome.status.title()}", unit=MetricUnit.Count, value=1)
    return outcome.as_state()
