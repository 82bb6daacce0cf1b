"""Lambda: capture (D1/D2) — the serve log's captured predictions and labels, shipped to S3 as JSON Lines."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.monitoring.capture import ship
from mlops.wiring.handlers import stores, transient_errors

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    artifacts = stores().artifacts
    result = ship(event, lambda key, data: artifacts.put_bytes(key, data, "application/x-ndjson"))
    metrics.add_metric(name="CapturedRows", unit=MetricUnit.Count, value=result["rows"])
    if result["ignored"]:
        logger.warning("log lines that are not captures were delivered", extra={"ignored": result["ignored"]})
    return result
