"""Lambda: export — the whole scikit-learn pipeline to one ONNX graph."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.steps.export import export
from mlops.wiring.handlers import ModelEvent, step_context, transient_errors, warm_up

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@warm_up()
@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    req = parse(event=event, model=ModelEvent)
    result = export(step_context(req), dataset=req.prepare.dataset, model=req.train.model)
    metrics.add_metric(name="OnnxBytes", unit=MetricUnit.Bytes, value=result.size_bytes)
    return result.as_state()
