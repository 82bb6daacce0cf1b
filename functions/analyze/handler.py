"""Lambda: analyze (A2) — per-column statistics and a readable report."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.steps.analyze import analyze
from mlops.wiring.handlers import AnalyzeEvent, step_context, transient_errors, warm_up

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@warm_up()
@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    req = parse(event=event, model=AnalyzeEvent)
    return analyze(step_context(req), snapshot=req.extract.snapshot).as_state()
