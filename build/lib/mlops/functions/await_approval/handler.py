"""Lambda: await_approval (B6) — park the run with its task token until `mlops models approve`."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.core.runs import await_approval
from mlops.wiring.handlers import ApprovalEvent, stores, transient_errors

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    req = parse(event=event, model=ApprovalEvent)
    return await_approval(stores(), req.model, req.run_id, req.version, req.token)
