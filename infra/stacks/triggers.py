"""Continuous-training triggers: the trigger function and its EventBridge rules."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_destinations as destinations

from constructs import Construct
from mlops.core.constants import ENV_SCORING_STATE_MACHINE_ARN, ENV_STATE_MACHINE_ARN
from mlops.infra.constructs.retraining_triggers import RetrainingTriggers, object_created_pattern
from mlops.infra.functions import TRIGGER_FUNCTION
from mlops.infra.settings import EnvironmentSettings
from mlops.infra.stacks.pipeline import PipelineStack
from mlops.infra.stacks.storage import StorageStack


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
            extra_env={
                ENV_STATE_MACHINE_ARN: pipeline.state_machine.state_machine_arn,
                ENV_SCORING_STATE_MACHINE_ARN: pipeline.scoring_state_machine.state_machine_arn,
            },
        )
        storage.tables.runs.grant_read_write_data(self.trigger)
        # C4: a challenger's alarm withdraws it (the models table's alias and history items).
        storage.tables.models.grant_read_write_data(self.trigger)
        pipeline.state_machine.grant_start_execution(self.trigger)
        pipeline.scoring_state_machine.grant_start_execution(self.trigger)  # batch scoring jobs
        pipeline.events.grant_publish(self.trigger)  # a run started; a challenger withdrawn by its alarm
        # To evict a lock whose execution ended without releasing it (a lost status-change event).
        pipeline.state_machine.grant_execution(self.trigger, "states:DescribeExecution")
        self.rules = RetrainingTriggers(
            self,
            "Rules",
            trigger=self.trigger,
            landing=storage.store.landing,
            state_machine=pipeline.state_machine,
            models=pipeline.models,
        )
        # Files to score under a model's scoring prefix start a batch scoring job (the trigger pins the champion).
        self.new_scoring_input = events.Rule(
            self,
            "NewScoringInput",
            description="Files to score under a model's scoring prefix in the landing bucket start a scoring job",
            event_pattern=object_created_pattern(
                storage.store.landing.bucket_name, sorted({m.scoring_prefix for m in pipeline.models})
            ),
            targets=[
                targets.LambdaFunction(
                    self.trigger,
                    dead_letter_queue=self.rules.dead_letters,
                    retry_attempts=4,
                    max_event_age=Duration.hours(6),
                )
            ],
        )
        # Lambda retries a failed asynchronous invocation twice; what still fails lands in the queue,
        # with the event, instead of vanishing — and the queue's first message raises an alarm.
        self.trigger.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.rules.dead_letters),
            retry_attempts=2,
            max_event_age=Duration.hours(6),
        )
        self.dead_letter_alarm = cloudwatch.Alarm(
            self,
            "TriggerDeadLetters",
            alarm_description="A trigger event could not be handled (see the dead-letter queue): a run may be missing",
            metric=self.rules.dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.dead_letter_alarm.add_alarm_action(cw_actions.SnsAction(pipeline.failure_topic))
        CfnOutput(self, "TriggerFunction", value=self.trigger.function_name)
