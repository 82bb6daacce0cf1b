"""Lambda: finalize — close the run record (succeeded, failed or rejected), release the run lock, and publish
the model's report site with this run on it."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.core.runs import finalize
from mlops.reports.site import publish_quietly
from mlops.wiring.handlers import FinalizeEvent, step_context, transient_errors, warm_up
from mlops.wiring.runtime import models_from_env

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@warm_up()
@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    req = parse(event=event, model=FinalizeEvent)
    fields = {"validate_data", "validate_model", "evaluate", "register_"}
    details = req.model_dump(include=fields, exclude_none=True, by_alias=True)
    ctx = step_context(req)
    result = finalize(
        ctx.stores, req.model, req.run_id, req.outcome, error=req.error, details=details, config=ctx.config
    )
    metrics.add_metric(name=f"Runs{req.outcome.title()}", unit=MetricUnit.Count, value=1)
    published = publish_quietly(ctx.stores, req.model, models_from_env())  # its feature sets' pages too
    metrics.add_metric(name="SitePagesPublished", unit=MetricUnit.Count, value=len(published))
    return result
