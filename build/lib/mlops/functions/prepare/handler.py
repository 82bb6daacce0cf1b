"""Lambda: prepare (A5) — deterministic train / validation / test splits."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.steps.prepare import prepare
from mlops.wiring.handlers import PrepareEvent, step_context, transient_errors, warm_up

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@warm_up("mlops.data.frames")
@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    req = parse(event=event, model=PrepareEvent)
    return prepare(step_context(req), snapshot=req.extract.snapshot, schema=req.validate_data.usable_schema).as_state()
