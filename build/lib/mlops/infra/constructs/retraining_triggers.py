"""D5: the trigger function and the EventBridge rules that feed it."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn

from constructs import Construct
from mlops.core.config import ModelSet

FINISHED = ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]


def object_created_pattern(bucket_name: str, prefixes: list[str]) -> events.EventPattern:
    """The rule pattern for new data under any model's prefix; the offline emulator matches uploads against the
    same shape, and the trigger routes each to the model whose prefix it falls under."""
    return events.EventPattern(
        source=["aws.s3"],
        detail_type=["Object Created"],
        detail={"bucket": {"name": [bucket_name]}, "object": {"key": [{"prefix": p} for p in prefixes]}},
    )


def model_schedule(
    scope: Construct,
    construct_id: str,
    *,
    model: str,
    expression: str,
    description: str,
    function: lambda_.IFunction,
    **target: Any,
) -> events.Rule:
    """A model's schedule: a rule that hands ``function`` the Scheduled Event naming ``model`` (``target``: the
    Lambda target's retry and dead-letter settings)."""
    return events.Rule(
        scope,
        construct_id,
        description=description,
        schedule=events.Schedule.expression(expression),
        targets=[targets.LambdaFunction(function, event=scheduled_for(model), **target)],
    )


def scheduled_for(model: str) -> events.RuleTargetInput:
    """A schedule's event as EventBridge sends it, with ``detail.model`` naming the model it is for (the
    trigger and the monitor route by it)."""
    return events.RuleTargetInput.from_object(
        {
            "version": "0",
            "id": events.EventField.event_id,
            "detail-type": events.EventField.detail_type,
            "source": events.EventField.source,
            "account": events.EventField.account,
            "time": events.EventField.time,
            "region": events.EventField.region,
            "resources": events.EventField.from_path("$.resources"),
            "detail": {"model": model},
        }
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
        models: ModelSet,
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
            description="New training data under a model's prefix in the landing bucket starts its run",
            event_pattern=object_created_pattern(landing.bucket_name, [m.data.prefix for m in models]),
            targets=[target],
        )
        # Per model, generated from its config: its retraining schedule.
        self.schedules: dict[str, events.Rule] = {}
        for config in models:
            if config.schedule:
                self.schedules[config.name] = model_schedule(
                    self,
                    f"Schedule-{config.name}",
                    model=config.name,
                    expression=config.schedule,
                    description=f"Periodic retraining of {config.name}",
                    function=trigger,
                    dead_letter_queue=self.dead_letters,
                    retry_attempts=4,
                    max_event_age=Duration.hours(6),
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
