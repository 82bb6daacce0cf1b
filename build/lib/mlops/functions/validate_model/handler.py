"""Lambda: validate_model (B5) — gates, champion comparison, parity and infra check in the serving runtime."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.steps.validate_model import validate_model
from mlops.wiring.handlers import ValidateModelEvent, step_context, transient_errors, warm_up

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@warm_up()
@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    req = parse(event=event, model=ValidateModelEvent)
    ev = req.evaluate
    result = validate_model(
        step_context(req),
        evaluation=ev.evaluation,
        onnx=req.export.onnx,
        reference=ev.reference,
        features=req.export.features,
    )
    metrics.add_metric(name="CandidateBlessed", unit=MetricUnit.Count, value=int(result.blessed))
    return result.as_state()
