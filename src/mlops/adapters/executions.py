"""Step Functions executions: start one by name (the idempotency key) and ask how it stands."""

from __future__ import annotations

import json
from typing import Any, Protocol

TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


class ExecutionExistsError(RuntimeError):
    """Step Functions refuses a second execution of one name (for 90 days on a Standard workflow)."""

    def __init__(self, execution_arn: str) -> None:
        super().__init__(f"an execution named {execution_arn.rsplit(':', 1)[-1]} already exists")
        self.execution_arn = execution_arn


class Executions(Protocol):
    state_machine_arn: str

    def arn_of(self, name: str) -> str: ...
    def start(self, name: str, payload: dict[str, Any]) -> str: ...
    def status(self, execution_arn: str) -> str | None: ...


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
