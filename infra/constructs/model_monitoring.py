"""D3/D4/D5: the monitor on its schedule, the alarms (with their false-alarm guards), the dashboard, and the
rule that turns a drift or quality alarm into a retraining run."""

from __future__ import annotations

from collections.abc import Sequence

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
from mlops.core import constants as c
from mlops.core.clock import schedule_period_s
from mlops.core.config import ModelSet, ProjectConfig, Task
from mlops.infra.constructs.dead_letters import DeadLetters
from mlops.infra.constructs.retraining_triggers import model_schedule

SERVING_PERIOD = Duration.minutes(5)


def alarm_state_change_pattern(alarms: Sequence[cloudwatch.IAlarm]) -> events.EventPattern:
    """CloudWatch's own event when one of ``alarms`` goes into ALARM (the emulator emits the same shape)."""
    return events.EventPattern(
        source=["aws.cloudwatch"],
        detail_type=["CloudWatch Alarm State Change"],
        resources=[a.alarm_arn for a in alarms],
        detail={"state": {"value": ["ALARM"]}},
    )


class ModelAlarms(Construct):
    """One model's share, generated from its config: the monitor's schedule for it, and the alarms on the
    metrics the monitor publishes with its ``Model`` dimension."""

    def __init__(self, scope: Construct, construct_id: str, *, project: ProjectConfig, monitor: lambda_.IFunction):
        super().__init__(scope, construct_id)
        mon = project.monitoring
        self.project = project
        period = Duration.seconds(schedule_period_s(mon.schedule))
        dims = {"Model": project.name}
        self.period_s = schedule_period_s(mon.schedule)

        def model_metric(name: str, statistic: str = "Maximum") -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=c.METRICS_NAMESPACE, metric_name=name, dimensions_map=dims, period=period, statistic=statistic
            )

        self.metric = model_metric
        self.schedule = None
        if mon.schedule:
            self.schedule = model_schedule(
                self,
                "Schedule",
                model=project.name,
                expression=mon.schedule,
                description=f"Judge the last {mon.window_hours:g} h of {project.name}'s served traffic",
                function=monitor,
                retry_attempts=2,
                max_event_age=Duration.hours(1),
            )
        # The guard against false alarms: a window below monitoring.min_samples publishes no verdict (missing
        # data is not breaching), and alarm_windows consecutive judged windows must breach.
        windows = mon.alarm_windows

        def judged(
            alarm_id: str,
            metric: str,
            threshold: float,
            op: cloudwatch.ComparisonOperator,
            description: str,
            windows: int = windows,
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
        # Before labels: the accuracy estimated from calibrated probabilities (a regressor publishes none).
        self.estimated_quality = (
            judged(
                "EstimatedQualityAlarm",
                c.METRIC_ESTIMATED_SHORTFALL,
                mon.estimate_margin,
                above,
                f"{project.name}: accuracy estimated before labels more than {mon.estimate_margin:g} below the "
                f"champion's test accuracy in {windows} consecutive window(s); retrains"
                + ("" if mon.retrain_on_alarm else " (off)"),
            )
            if project.task is not Task.REGRESSION
            else None
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
        # C4: a challenger's alarms; their ALARM withdraws it (the trigger, through the WithdrawChallenger rule).
        self.challenger_errors = cloudwatch.Alarm(
            self,
            "ChallengerErrorAlarm",
            alarm_description=f"{project.name}: the challenger could not answer a request the champion could; "
            "withdraws the challenger",
            metric=cloudwatch.Metric(
                namespace=c.METRICS_NAMESPACE,
                metric_name=c.METRIC_CHALLENGER_ERRORS,
                dimensions_map={"Model": project.name, "service": c.SERVICE_NAME},  # EMF from the serve function
                period=SERVING_PERIOD,
                statistic="Sum",
            ),
            threshold=1,
            comparison_operator=at_least,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.challenger_disagreement = judged(
            "ChallengerDisagreementAlarm",
            c.METRIC_CHALLENGER_DISAGREEMENT,
            mon.challenger_max_disagreement,
            above,
            f"{project.name}: the shadow challenger's answers differ from the champion's on more than "
            f"{mon.challenger_max_disagreement:.0%} of a judged window; withdraws the challenger",
            windows=1,
        )
        self.challenger_quality = judged(
            "ChallengerQualityAlarm",
            c.METRIC_CHALLENGER_QUALITY_SHORTFALL,
            mon.quality_margin,
            above,
            f"{project.name}: the challenger's live quality is more than {mon.quality_margin:g} below the "
            "champion's on the same window's labels; withdraws the challenger",
            windows=1,
        )
        self.challenger_latency = judged(
            "ChallengerLatencyAlarm",
            c.METRIC_CHALLENGER_LATENCY_RATIO,
            mon.challenger_max_latency_ratio,
            above,
            f"{project.name}: the challenger's median handler time is more than "
            f"{mon.challenger_max_latency_ratio:g}x the champion's in a judged window; withdraws the challenger",
            windows=1,
        )
        estimated = [self.estimated_quality] if self.estimated_quality is not None else []
        self.alarms = [self.drift, self.quality, *estimated, self.prediction_drift, self.data_quality]
        self.challenger_alarms = [
            self.challenger_errors,
            self.challenger_disagreement,
            self.challenger_quality,
            self.challenger_latency,
        ]
        self.retrains = [self.drift, self.quality, *estimated] if mon.retrain_on_alarm else []

    def widgets(self) -> list[cloudwatch.IWidget]:
        """This model's row on the dashboard."""
        m, mon = self.metric, self.project.monitoring
        return [
            cloudwatch.TextWidget(
                markdown=f"## {self.project.name}\nJudged every {self.period_s // 60} min over "
                f"{mon.window_hours:g} h of captured traffic.",
                width=6,
                height=6,
            ),
            cloudwatch.GraphWidget(
                title=f"{self.project.name}: records and labels per window",
                left=[m(c.METRIC_RECORDS), m(c.METRIC_LABELLED)],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title=f"{self.project.name}: drift",
                left=[m(c.METRIC_DRIFTED_FEATURES)],
                right=[m(c.METRIC_DRIFT_SCORE), m(c.METRIC_PREDICTION_DRIFT)],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title=f"{self.project.name}: live quality",
                left=[m(c.METRIC_LIVE_QUALITY), m(c.METRIC_ESTIMATED_ACCURACY)],
                right=[m(c.METRIC_QUALITY_SHORTFALL), m(c.METRIC_ESTIMATED_SHORTFALL)],
                width=6,
            ),
        ]


class ModelMonitoring(Construct):
    """Per model (from its config): the monitor's schedule and alarms. Shared: alarms on serving and runs, a
    dashboard with a row per model, and alarm → trigger for every model that retrains on alarms."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        models: ModelSet,
        monitor: lambda_.IFunction,
        serve: lambda_.IFunction,
        api: apigw.RestApi,
        state_machine: sfn.IStateMachine,
        topic: sns.ITopic,
        trigger: lambda_.IFunction,
        dead_letter_alarms: list[cloudwatch.IAlarm],
        serving_alarms: Sequence[cloudwatch.IAlarm],
    ) -> None:
        super().__init__(scope, construct_id)
        self.models = {m.name: ModelAlarms(self, f"Model-{m.name}", project=m, monitor=monitor) for m in models}
        at_least = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
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
        per_model = [a for m in self.models.values() for a in (*m.alarms, *m.challenger_alarms)]
        self.alarms = [*per_model, self.failed_runs]
        for alarm in self.alarms:
            alarm.add_alarm_action(cw_actions.SnsAction(topic))
        self.serving_alarms = serving_alarms  # the Serving stack's (they also gate code deploys there)
        # D5: a drift or quality alarm starts a run through the one trigger (cooldown, lock, reason "alarm"); the
        # trigger finds the model in the alarm's metric (its Model dimension).
        retrains = [a for m in self.models.values() for a in m.retrains]
        self.retrain = None
        self.retrain_dead_letters = None
        if retrains:
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
                description="A drift or quality alarm starts a retraining run of its model (cooldown in the trigger)",
                event_pattern=alarm_state_change_pattern(retrains),
                targets=[
                    targets.LambdaFunction(
                        trigger,
                        dead_letter_queue=self.retrain_dead_letters,
                        retry_attempts=4,
                        max_event_age=Duration.hours(6),
                    )
                ],
            )
        # C4: a challenger's alarm withdraws it without a person (the trigger; the history names the alarm).
        withdraw_dead_letters = DeadLetters(
            self,
            "WithdrawDeadLetters",
            of="the challenger-withdrawal rule",
            impact="A challenger's alarm could not reach the trigger: the challenger may still be taking traffic",
            topic=topic,
        )
        dead_letter_alarms = [*dead_letter_alarms, withdraw_dead_letters.alarm]
        self.withdraw = events.Rule(
            self,
            "WithdrawChallenger",
            description="A challenger's error, disagreement, live-quality or latency alarm withdraws the challenger",
            event_pattern=alarm_state_change_pattern([a for m in self.models.values() for a in m.challenger_alarms]),
            targets=[
                targets.LambdaFunction(
                    trigger,
                    dead_letter_queue=withdraw_dead_letters.queue,
                    retry_attempts=4,
                    max_event_age=Duration.hours(6),
                )
            ],
        )
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.days(7))
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# serverless-mlops: {', '.join(models.names)}\nServing (shared), a row per model "
                "(monitoring), and training runs.",
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
        for alarms in self.models.values():
            self.dashboard.add_widgets(*alarms.widgets())
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
            cloudwatch.AlarmStatusWidget(
                title="Alarms", alarms=[*serving_alarms, *self.alarms, *dead_letter_alarms], width=12
            ),
        )
