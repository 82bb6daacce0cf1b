"""D5: the trigger function and the EventBridge rules that feed it."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn

from constructs import Construct
from mlops.config import ProjectConfig

FINISHED = ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]


def object_created_pattern(bucket_name: str, prefix: str) -> events.EventPattern:
    """The rule pattern for new data; the offline emulator matches uploads against the same shape."""
    return events.EventPattern(
        source=["aws.s3"],
        detail_type=["Object Created"],
        detail={"bucket": {"name": [bucket_name]}, "object": {"key": [{"prefix": prefix}]}},
    )


class RetrainingTriggers(Construct):
    """Rules: new data under the prefix, the schedule, and our own executions finishing (lock release)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        trigger: lambda_.IFunction,
        landing: s3.IBucket,
        state_machine: sfn.IStateMachine,
        project: ProjectConfig,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        target = targets.LambdaFunction(
            trigger, dead_letter_queue=self.dead_letters, retry_attempts=4, max_event_age=Duration.hours(6)
        )
        self.new_data = events.Rule(
            self,
            "NewData",
            description="New training data in the landing bucket starts a run",
            event_pattern=object_created_pattern(landing.bucket_name, project.data.prefix),
            targets=[target],
        )
        self.schedule = None
        if project.schedule:
            self.schedule = events.Rule(
                self,
                "Schedule",
                description="Periodic retraining",
                schedule=events.Schedule.expression(project.schedule),
                targets=[target],
            )
        self.run_finished = events.Rule(
            self,
            "RunFinished",
            description="A finished execution releases the run lock and starts deferred triggers",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={"status": FINISHED, "stateMachineArn": [state_machine.state_machine_arn]},
            ),
            targets=[target],
        )
