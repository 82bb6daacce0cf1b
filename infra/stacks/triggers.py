"""Continuous-training triggers: the trigger function and its EventBridge rules."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack

from constructs import Construct
from infra.constructs.retraining_triggers import RetrainingTriggers
from infra.functions import TRIGGER_FUNCTION
from infra.settings import EnvironmentSettings
from infra.stacks.pipeline import PipelineStack
from infra.stacks.storage import StorageStack
from mlops.constants import ENV_STATE_MACHINE_ARN


class TriggersStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        storage: StorageStack,
        pipeline: PipelineStack,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.trigger = pipeline.make_function(
            self,
            "Trigger",
            spec=TRIGGER_FUNCTION,
            extra_env={ENV_STATE_MACHINE_ARN: pipeline.state_machine.state_machine_arn},
        )
        storage.tables.runs.grant_read_write_data(self.trigger)
        pipeline.state_machine.grant_start_execution(self.trigger)
        self.rules = RetrainingTriggers(
            self,
            "Rules",
            trigger=self.trigger,
            landing=storage.store.landing,
            state_machine=pipeline.state_machine,
            project=settings.project(),
        )
        CfnOutput(self, "TriggerFunction", value=self.trigger.function_name)
