"""Step Functions executions: start one by name (the idempotency key) and ask how it stands."""

from __future__ import annotations

import json
from typing import Any

from mlops.core.ports import ExecutionExistsError


class StepFunctionsExecutions:
    """Executions of one state machine, over a boto3 ``stepfunctions`` client."""

    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._sfn = client
        self.state_machine_arn = state_machine_arn

    def arn_of(self, name: str) -> str:
        return f"{self.state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"

    def start(self, name: str, payload: dict[str, Any]) -> str:
        """Start an execution; :class:`ExecutionExistsError` if the name was ever used."""
        try:
            resp = self._sfn.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(payload)
            )
        except self._sfn.exceptions.ExecutionAlreadyExists:
            raise ExecutionExistsError(self.arn_of(name)) from None
        return str(resp["executionArn"])

    def status(self, execution_arn: str) -> str | None:
        """RUNNING, SUCCEEDED, …; None when no such execution exists."""
        try:
            return str(self._sfn.describe_execution(executionArn=execution_arn)["status"])
        except self._sfn.exceptions.ExecutionDoesNotExist:
            return None

    def succeed_task(self, token: str, output: dict[str, Any]) -> None:
        """Release a task waiting on ``token`` (the approval wait) with ``output``."""
        self._sfn.send_task_success(taskToken=token, output=json.dumps(output))

    def fail_task(self, token: str, error: str, cause: str) -> None:
        self._sfn.send_task_failure(taskToken=token, error=error, cause=cause)
