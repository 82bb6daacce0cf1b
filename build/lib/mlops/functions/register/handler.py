"""Lambda: register (B6) — a model version with lineage; promoted now unless approval is manual."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.steps.register import register
from mlops.wiring.handlers import RegisterEvent, step_context, transient_errors, warm_up

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@warm_up()
@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    r = parse(event=event, model=RegisterEvent)
    return register(
        step_context(r),
        snapshot=r.extract.snapshot,
        manifest=r.extract.manifest,
        statistics=r.analyze.statistics,
        schema=r.validate_data.usable_schema,
        schema_version=r.validate_data.schema_version,
        dataset=r.prepare.dataset,
        onnx=r.export.onnx,
        evaluation=r.evaluate.evaluation,
        report=r.evaluate.report,
        blessing=r.validate_model.report,
        train=r.train,
    ).as_state()
