"""A dead-letter queue whose first message raises an alarm: what could not be delivered is kept and noticed."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs

from constructs import Construct
from mlops.infra import nag


class DeadLetters(Construct):
    """An encrypted, SSL-only queue (14 days) and an alarm, to ``topic``, on its first visible message."""

    def __init__(self, scope: Construct, construct_id: str, *, of: str, impact: str, topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        nag.acknowledge(self.queue, "AwsSolutions-SQS3", f"This queue is the dead-letter queue of {of}.")
        self.alarm = cloudwatch.Alarm(
            self,
            "Alarm",
            alarm_description=f"{impact} (see the dead-letter queue of {of})",
            metric=self.queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarm.add_alarm_action(cw_actions.SnsAction(topic))
