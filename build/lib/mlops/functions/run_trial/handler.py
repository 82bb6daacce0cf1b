"""Lambda: run_trial (B1/B2) — fit one candidate on train, score it on validation (one Map item)."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.steps.train import run_trial
from mlops.wiring.handlers import TrialEvent, step_context, transient_errors, warm_up

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@warm_up("mlops.data.frames")
@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    req = parse(event=event, model=TrialEvent)
    result = run_trial(step_context(req), dataset=req.dataset, trial=req.trial)
    metrics.add_metric(name="TrialSeconds", unit=MetricUnit.Seconds, value=result.duration_s or 0.0)
    return result.as_state()
