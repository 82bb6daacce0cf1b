"""Lambda: promote (B6) — make an approved version champion, recorded in the audit history."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.core.registry import promote
from mlops.wiring.handlers import PromoteEvent, stores, transient_errors

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    req = parse(event=event, model=PromoteEvent)
    actor = req.approval.get("approved_by", "approver")
    reason = req.approval.get("reason") or f"approved for run {req.run_id}"
    return promote(stores(), req.model, req.version, reason=reason, actor=actor)
