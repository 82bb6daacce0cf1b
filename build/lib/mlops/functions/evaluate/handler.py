"""Lambda: evaluate (B4) — test metrics, slices, plots, and the champion re-scored on the same split."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.steps.evaluate import evaluate
from mlops.wiring.handlers import ModelEvent, step_context, transient_errors, warm_up

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@warm_up("mlops.data.frames")
@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    req = parse(event=event, model=ModelEvent)
    return evaluate(step_context(req), dataset=req.prepare.dataset, model=req.train.model).as_state()
