"""The platform's facts on EventBridge (:mod:`mlops.core.facts`): who may publish them, their published schemas, and
where they are kept.

- **Publishers**: only the functions that make a fact get ``events:PutEvents`` — on this bus, for this source
  (an IAM condition on ``events:source``) — and the environment variables that name them.
- **Schemas**: an EventBridge schema registry with one schema per detail-type, from the same pydantic models the
  publishers build (so code bindings can be generated from it).
- **Kept**: a rule sends every one of this environment's events to a log group (`mlops events tail` reads it,
  deployed or offline), and the champion changes to the notifications topic. Failed runs are not sent there
  again: the pipeline's own catch already notifies each one (even when the run's record cannot be written), and a
  second rule would mail every failure twice.
"""

from __future__ import annotations

import json

import jsii
from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_eventschemas as eventschemas
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk.interfaces.aws_events import IRuleRef

from constructs import Construct
from mlops.core import constants as c
from mlops.core.facts import KINDS, detail_type_of, json_schema


@jsii.implements(events.IRuleTarget)
class _LogGroupTarget:
    """A log group as a rule's target, by ARN (its resource policy is the construct's own)."""

    def __init__(self, arn: str) -> None:
        self.arn = arn

    def bind(self, rule: IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self.arn)


class PlatformEvents(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: str,
        bus_name: str,
        source: str,
        retention: logs.RetentionDays,
        removal: RemovalPolicy,
        notifications: sns.ITopic | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.environment, self.source, self.bus_name = environment, source, bus_name
        self.bus = events.EventBus.from_event_bus_name(self, "Bus", bus_name)
        self.registry = eventschemas.CfnRegistry(
            self,
            "Schemas",
            registry_name=f"serverless-mlops-{environment}",
            description="serverless-mlops: the platform's events (mlops.core.facts), one schema per detail-type",
        )
        for kind in KINDS:
            name = detail_type_of(kind).replace(" ", "")
            schema = eventschemas.CfnSchema(
                self,
                f"Schema{name}",
                registry_name=self.registry.attr_registry_name,
                schema_name=f"{source}@{name}",
                type="JSONSchemaDraft4",
                content=json.dumps(json_schema(kind)),
                description=f"{detail_type_of(kind)}: mlops.core.facts.{kind.__name__}",
            )
            schema.add_dependency(self.registry)
        self.log_group = logs.LogGroup(
            self,
            "Log",
            log_group_name=f"/aws/events/serverless-mlops-{environment}",
            retention=retention,
            removal_policy=removal,
        )
        self.pattern = events.EventPattern(source=[source], detail={"environment": [environment]})
        # The log group's resource policy lets EventBridge write to it — as a resource of its own: CDK's log-group
        # target puts it through a custom resource whose role needs logs:PutResourcePolicy on "*".
        group_arn = Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=self.log_group.log_group_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        logs.CfnResourcePolicy(
            self,
            "LogPolicy",
            policy_name=f"serverless-mlops-{environment}-events",
            policy_document=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": ["events.amazonaws.com", "delivery.logs.amazonaws.com"]},
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                            "Resource": f"{group_arn}:*",
                        }
                    ],
                }
            ),
        )
        events.Rule(
            self,
            "KeepAll",
            event_bus=self.bus,
            description="serverless-mlops: every event of this environment, kept in its log group (mlops events tail)",
            event_pattern=self.pattern,
            targets=[_LogGroupTarget(group_arn)],
        )
        if notifications is not None:
            events.Rule(
                self,
                "NotifyChampion",
                event_bus=self.bus,
                description="serverless-mlops: Champion Changed to the notifications topic",
                event_pattern=events.EventPattern(
                    source=[source], detail_type=["Champion Changed"], detail={"environment": [environment]}
                ),
                targets=[targets.SnsTopic(notifications, retry_attempts=3, max_event_age=Duration.hours(2))],
            )

    @property
    def env(self) -> dict[str, str]:
        return {
            c.ENV_EVENT_BUS: self.bus.event_bus_name,
            c.ENV_EVENT_SOURCE: self.source,
            c.ENV_ENVIRONMENT: self.environment,
        }

    def grant_publish(self, fn: lambda_.Function) -> None:
        """``fn`` makes facts: it may put events on this bus, with this source only."""
        for key, value in self.env.items():
            fn.add_environment(key, value)
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["events:PutEvents"],
                resources=[
                    Stack.of(fn).format_arn(
                        service="events", resource="event-bus", resource_name=self.bus.event_bus_name
                    )
                ],
                conditions={"StringEquals": {"events:source": self.source}},
            )
        )
