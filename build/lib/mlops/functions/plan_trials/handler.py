"""Lambda: plan_trials (B2) — the candidate configurations the tuning Map fans out over."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.steps.plan import plan_trials
from mlops.wiring.handlers import DatasetEvent, step_context, transient_errors, warm_up

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@warm_up()
@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    req = parse(event=event, model=DatasetEvent)
    return plan_trials(step_context(req), dataset=req.prepare.dataset).as_state()
