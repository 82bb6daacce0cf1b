"""Lambda: train (B1/B3) — pick the best trial by the validation metric and refit it."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.steps.train import select_and_refit
from mlops.wiring.handlers import SelectEvent, step_context, transient_errors, warm_up

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@warm_up("mlops.data.frames")
@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    req = parse(event=event, model=SelectEvent)
    return select_and_refit(step_context(req), dataset=req.prepare.dataset, trials=req.trials).as_state()
