"""Lambda: monitor (D3) — a window of captured traffic judged against the champion; metrics, report."""

from datetime import datetime

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.monitoring.monitor import run_monitor
from mlops.reports.site import publish_quietly
from mlops.wiring.handlers import metrics_publisher, stores, transient_errors
from mlops.wiring.runtime import models_from_env

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    # A scheduled run (its model's rule: detail.model) judges the window ending at the schedule's time; on
    # demand ({"model", "end"}), now or "end". A deployment with one model needs no name.
    when = event.get("end") or event.get("time")
    end = datetime.fromisoformat(when.replace("Z", "+00:00")) if when else None
    models = models_from_env()
    config = models.choose(event.get("model") or (event.get("detail") or {}).get("model"))
    summary = run_monitor(stores(), config, metrics_publisher(), end, models.feature_sets)
    publish_quietly(stores(), config.name, models)  # the model's site, with this window on it
    logger.info("window judged", extra={k: summary.get(k) for k in ("status", "records", "drifted", "version")})
    return {k: summary[k] for k in ("model", "status", "judged", "window", "records", "report") if k in summary} | {
        "drifted": summary.get("drifted"),
        "quality": {k: v for k, v in (summary.get("quality") or {}).items() if k != "metrics"},
        "metrics": summary.get("metrics"),
    }
