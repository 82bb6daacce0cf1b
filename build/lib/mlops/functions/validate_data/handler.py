"""Lambda: validate_data (A3/A4) — schema, anomalies and drift; the state machine branches on `passed`."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.steps.validate_data import validate_data
from mlops.wiring.handlers import ValidateDataEvent, step_context, transient_errors, warm_up

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@warm_up("mlops.data.frames")
@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    req = parse(event=event, model=ValidateDataEvent)
    result = validate_data(
        step_context(req),
        snapshot=req.extract.snapshot,
        statistics=req.analyze.statistics,
        manifest=req.extract.manifest,
    )
    metrics.add_metric(name="DataAnomalyErrors", unit=MetricUnit.Count, value=result.num_errors)
    metrics.add_metric(name="DriftedFeatures", unit=MetricUnit.Count, value=result.drifted_features)
    return result.as_state()
