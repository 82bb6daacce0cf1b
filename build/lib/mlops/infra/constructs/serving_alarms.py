"""C3/C4: the serving alarms — 5xx share and p99 latency at the API, errors of the function's `live` alias —
and the CodeDeploy deployment group that shifts a new serve function version onto `live` gradually, watched
by those alarms and rolled back when one fires."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns

from constructs import Construct
from mlops.core.config import ModelSet
from mlops.infra import nag

SERVING_PERIOD = Duration.minutes(5)
DEPLOYMENT_CONFIGS = {
    "all_at_once": codedeploy.LambdaDeploymentConfig.ALL_AT_ONCE,
    "canary_10_percent_5_minutes": codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_5_MINUTES,
    "canary_10_percent_15_minutes": codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_15_MINUTES,
    "linear_10_percent_every_1_minute": codedeploy.LambdaDeploymentConfig.LINEAR_10_PERCENT_EVERY_1_MINUTE,
    "linear_10_percent_every_3_minutes": codedeploy.LambdaDeploymentConfig.LINEAR_10_PERCENT_EVERY_3_MINUTES,
}


class ServingAlarms(Construct):
    """One API and one function serve every model: their alarms are shared, at the strictest threshold any
    model asks for (``monitoring.error_rate``, ``monitoring.latency_p99_ms``)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        models: ModelSet,
        api: apigw.RestApi,
        alias: lambda_.Alias,
        topic: sns.ITopic,
        deployment: str,
    ) -> None:
        super().__init__(scope, construct_id)
        error_rate = min(m.monitoring.error_rate for m in models)
        latency_p99_ms = min(m.monitoring.latency_p99_ms for m in models)
        above = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD

        def serving(alarm_id: str, metric: cloudwatch.IMetric, threshold: float, description: str) -> cloudwatch.Alarm:
            """A serving alarm: 2 of the last 3 five-minute periods, quiet without traffic."""
            return cloudwatch.Alarm(
                self,
                alarm_id,
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                comparison_operator=above,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )

        self.server_errors = serving(
            "ServerErrorAlarm",
            api.metric_server_error(period=SERVING_PERIOD, statistic="Average"),
            error_rate,
            f"More than {error_rate:.1%} of prediction requests answered 5xx",
        )
        self.latency = serving(
            "LatencyAlarm",
            api.metric_latency(period=SERVING_PERIOD, statistic="p99"),
            latency_p99_ms,
            f"Prediction latency p99 above {latency_p99_ms:g} ms",
        )
        # The function itself failing (not a client's 4xx): what a bad code deploy looks like first.
        self.live_errors = cloudwatch.Alarm(
            self,
            "LiveErrorsAlarm",
            alarm_description="The serve function's live alias raised errors (a bad code deploy is rolled back)",
            metric=alias.metric_errors(period=Duration.minutes(1), statistic="Sum"),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarms = [self.server_errors, self.latency, self.live_errors]
        for alarm in self.alarms:
            alarm.add_alarm_action(cw_actions.SnsAction(topic))
        # Code deploys: CodeDeploy shifts `live` to the new version (canary or linear, from cdk.json), watches
        # these alarms, and shifts back by itself when one fires.
        self.deployment_group = codedeploy.LambdaDeploymentGroup(
            self,
            "LiveDeployment",
            alias=alias,
            deployment_config=DEPLOYMENT_CONFIGS[deployment],
            alarms=self.alarms,
            auto_rollback=codedeploy.AutoRollbackConfig(
                failed_deployment=True, stopped_deployment=True, deployment_in_alarm=True
            ),
        )
        nag.acknowledge(
            self.deployment_group,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSCodeDeployRoleForLambdaLimited]",
            "CodeDeploy's service role for Lambda deployments: AWS's limited managed policy lets it shift only "
            "aliases and invoke hook functions, which is what a gradual deploy needs.",
        )
