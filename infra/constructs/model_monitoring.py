"""D3/D4/D5: the monitor on its schedule, the alarms (with their false-alarm guards), the dashboard, and the
rule that turns a drift or quality alarm into a retraining run."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn

from constructs import Construct
from infra.constructs.dead_letters import DeadLetters
from mlops import constants as c
from mlops.clock import schedule_period_s
from mlops.config import ProjectConfig

SERVING_PERIOD = Duration.minutes(5)


def alarm_state_change_pattern(alarms: list[cloudwatch.IAlarm]) -> events.EventPattern:
    """CloudWatch's own event when one of ``alarms`` goes into ALARM (the emulator emits the same shape)."""
    return events.EventPattern(
        source=["aws.cloudwatch"],
        detail_type=["CloudWatch Alarm State Change"],
        resources=[a.alarm_arn for a in alarms],
        detail={"state": {"value": ["ALARM"]}},
    )


class ModelMonitoring(Construct):
    """Alarms on the monitor's metrics and on serving and runs; a dashboard; alarm → trigger."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project: ProjectConfig,
        monitor: lambda_.IFunction,
        serve: lambda_.IFunction,
        api: apigw.RestApi,
        state_machine: sfn.IStateMachine,
        topic: sns.ITopic,
        trigger: lambda_.IFunction,
        dead_letter_alarms: list[cloudwatch.IAlarm],
    ) -> None:
        super().__init__(scope, construct_id)
        mon = project.monitoring
        period = Duration.seconds(schedule_period_s(mon.schedule))
        dims = {"Model": project.name}
        self.period_s = schedule_period_s(mon.schedule)

        def model_metric(name: str, statistic: str = "Maximum") -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=c.METRICS_NAMESPACE, metric_name=name, dimensions_map=dims, period=period, statistic=statistic
            )

        self.schedule = None
        if mon.schedule:
            self.schedule = events.Rule(
                self,
                "Schedule",
                description=f"Judge the last {mon.window_hours:g} h of served traffic",
                schedule=events.Schedule.expression(mon.schedule),
                targets=[targets.LambdaFunction(monitor, retry_attempts=2, max_event_age=Duration.hours(1))],
            )
        # The guard against false alarms: a window below monitoring.min_samples publishes no verdict (missing
        # data is not breaching), and alarm_windows consecutive judged windows must breach.
        windows = mon.alarm_windows

        def judged(
            alarm_id: str, metric: str, threshold: float, op: cloudwatch.ComparisonOperator, description: str
        ) -> cloudwatch.Alarm:
            return cloudwatch.Alarm(
                self,
                alarm_id,
                alarm_description=description,
                metric=model_metric(metric),
                threshold=threshold,
                comparison_operator=op,
                evaluation_periods=windows,
                datapoints_to_alarm=windows,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )

        at_least = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        above = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
        self.drift = judged(
            "DriftAlarm",
            c.METRIC_DRIFTED_FEATURES,
            mon.drift_min_features,
            at_least,
            f"{project.name}: {mon.drift_min_features}+ feature(s) drifted from the champion's training data in "
            f"{windows} consecutive window(s); retrains" + ("" if mon.retrain_on_alarm else " (off)"),
        )
        self.quality = judged(
            "QualityAlarm",
            c.METRIC_QUALITY_SHORTFALL,
            mon.quality_margin,
            above,
            f"{project.name}: live quality more than {mon.quality_margin:g} below the champion's test metric in "
            f"{windows} consecutive window(s); retrains" + ("" if mon.retrain_on_alarm else " (off)"),
        )
        self.prediction_drift = judged(
            "PredictionDriftAlarm",
            c.METRIC_PREDICTION_DRIFT,
            project.validation.drift.default_threshold,
            above,
            f"{project.name}: predictions drifted from the training labels' distribution",
        )
        self.data_quality = judged(
            "DataQualityAlarm",
            c.METRIC_QUALITY_ERRORS,
            1,
            at_least,
            f"{project.name}: served records break the champion's schema",
        )

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
            mon.error_rate,
            f"More than {mon.error_rate:.1%} of prediction requests answered 5xx",
        )
        self.latency = serving(
            "LatencyAlarm",
            api.metric_latency(period=SERVING_PERIOD, statistic="p99"),
            mon.latency_p99_ms,
            f"Prediction latency p99 above {mon.latency_p99_ms:g} ms",
        )
        self.failed_runs = cloudwatch.Alarm(
            self,
            "FailedRunsAlarm",
            alarm_description="A training run failed or timed out",
            metric=cloudwatch.MathExpression(
                expression="failed + timedout",
                using_metrics={
                    "failed": state_machine.metric_failed(period=SERVING_PERIOD, statistic="Sum"),
                    "timedout": state_machine.metric_timed_out(period=SERVING_PERIOD, statistic="Sum"),
                },
                period=SERVING_PERIOD,
            ),
            threshold=1,
            comparison_operator=at_least,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarms = [
            self.drift,
            self.quality,
            self.prediction_drift,
            self.data_quality,
            self.server_errors,
            self.latency,
            self.failed_runs,
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(cw_actions.SnsAction(topic))
        # D5: a drift or quality alarm starts a run through the one trigger (cooldown, lock, reason "alarm").
        self.retrain = None
        self.retrain_dead_letters = None
        if mon.retrain_on_alarm:
            # Its own queue (a queue policy naming this rule would make the Triggers stack depend on this one).
            retrain_dead_letters = DeadLetters(
                self,
                "RetrainDeadLetters",
                of="the alarm-to-retrain rule",
                impact="An alarm's retraining request could not reach the trigger",
                topic=topic,
            )
            self.retrain_dead_letters = retrain_dead_letters.queue
            dead_letter_alarms = [*dead_letter_alarms, retrain_dead_letters.alarm]
            self.retrain = events.Rule(
                self,
                "RetrainOnAlarm",
                description="A drift or quality alarm starts a retraining run (cooldown in the trigger)",
                event_pattern=alarm_state_change_pattern([self.drift, self.quality]),
                targets=[
                    targets.LambdaFunction(
                        trigger,
                        dead_letter_queue=self.retrain_dead_letters,
                        retry_attempts=4,
                        max_event_age=Duration.hours(6),
                    )
                ],
            )
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.days(7))
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# {project.name}\nServing, monitoring and training. Drift and quality are judged every "
                f"{self.period_s // 60} min over {mon.window_hours:g} h of captured traffic.",
                width=24,
                height=2,
            )
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Traffic", left=[api.metric_count(period=SERVING_PERIOD, statistic="Sum")], width=8
            ),
            cloudwatch.GraphWidget(
                title="Latency (ms)",
                left=[api.metric_latency(period=SERVING_PERIOD, statistic=s) for s in ("p50", "p99")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Errors",
                left=[
                    api.metric_client_error(period=SERVING_PERIOD, statistic="Sum"),
                    api.metric_server_error(period=SERVING_PERIOD, statistic="Sum"),
                    serve.metric_errors(period=SERVING_PERIOD),
                    serve.metric_throttles(period=SERVING_PERIOD),
                ],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Captured and labelled records per window",
                left=[model_metric(c.METRIC_RECORDS), model_metric(c.METRIC_LABELLED)],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Drift",
                left=[model_metric(c.METRIC_DRIFTED_FEATURES)],
                right=[model_metric(c.METRIC_DRIFT_SCORE), model_metric(c.METRIC_PREDICTION_DRIFT)],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Live quality",
                left=[model_metric(c.METRIC_LIVE_QUALITY)],
                right=[model_metric(c.METRIC_QUALITY_SHORTFALL)],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Training runs",
                left=[
                    state_machine.metric_succeeded(period=SERVING_PERIOD, statistic="Sum"),
                    state_machine.metric_failed(period=SERVING_PERIOD, statistic="Sum"),
                    state_machine.metric_timed_out(period=SERVING_PERIOD, statistic="Sum"),
                ],
                width=12,
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=[*self.alarms, *dead_letter_alarms], width=12),
        )
