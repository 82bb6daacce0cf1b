"""Lambda: trigger (D5) — S3 uploads, schedules, alarms and on-demand requests start one run at a
time per model (routed by the upload's prefix, the rule's model, the alarm's Model dimension); an upload under a
model's scoring prefix starts a batch scoring job."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.steps.trigger import dispatch
from mlops.wiring.handlers import stores, transient_errors
from mlops.wiring.runtime import executions_from_env, models_from_env, scoring_executions_from_env

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    result = dispatch(
        event, models_from_env(), stores(), executions_from_env(), scoring_jobs=scoring_executions_from_env()
    )
    metrics.add_metric(name=f"Trigger{result['status'].title()}", unit=MetricUnit.Count, value=1)
    return result
