"""Lambda: extract (A1) — read the landing data into a snapshot with a manifest."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.steps.extract import extract
from mlops.wiring.handlers import ExtractEvent, step_context, transient_errors, warm_up

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@warm_up("mlops.data.frames")
@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    req = parse(event=event, model=ExtractEvent)
    result = extract(step_context(req), source=req.source)
    metrics.add_metric(name="RowsExtracted", unit=MetricUnit.Count, value=result.rows)
    return result.as_state()
