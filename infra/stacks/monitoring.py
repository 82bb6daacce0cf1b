"""Monitoring (D3-D5): the monitor function and its schedule, alarms, the dashboard, alarm → retrain."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_iam as iam

from constructs import Construct
from mlops.core import constants as c
from mlops.core.constants import model_output_key
from mlops.infra.constructs.feature_store import FeatureSetAlarms
from mlops.infra.constructs.model_monitoring import ModelMonitoring
from mlops.infra.functions import MONITOR_FUNCTION
from mlops.infra.settings import EnvironmentSettings
from mlops.infra.stacks.pipeline import PipelineStack, grant_site_publishing
from mlops.infra.stacks.serving import ServingStack
from mlops.infra.stacks.storage import StorageStack
from mlops.infra.stacks.triggers import TriggersStack


class MonitoringStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        storage: StorageStack,
        pipeline: PipelineStack,
        triggers: TriggersStack,
        serving: ServingStack,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.monitor = pipeline.make_function(self, "Monitor", spec=MONITOR_FUNCTION)
        pipeline.events.grant_publish(self.monitor)  # a window judged; a challenger promoted by policy
        artifacts = storage.store.artifacts
        # Reads served traffic, labels, the champion's statistics and schema; writes only its own results.
        for prefix in (c.CAPTURES_PREFIX, c.FEEDBACK_PREFIX, c.MODELS_PREFIX, c.SCHEMAS_PREFIX):
            artifacts.grant_read(self.monitor, f"{prefix}*")
        artifacts.grant_put(self.monitor, f"{c.MONITORING_PREFIX}*")
        grant_site_publishing(
            self.monitor, storage, pipeline.models.feature_sets
        )  # each judged window republishes the model's site
        # Reads the registry; writes it only where a model promotes challengers by policy (C4: registry.
        # challenger_auto_promote).
        if any(m.registry.challenger_auto_promote for m in pipeline.models):
            storage.tables.models.grant_read_write_data(self.monitor)
        else:
            storage.tables.models.grant_read_data(self.monitor)
        # PutMetricData has no resource-level permissions: the condition limits it to this app's namespace.
        self.monitor.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": c.METRICS_NAMESPACE}},
            )
        )
        self.monitoring = ModelMonitoring(
            self,
            "Monitoring",
            models=pipeline.models,
            monitor=self.monitor,
            serve=serving.function,
            api=serving.api.api,
            state_machine=pipeline.state_machine,
            topic=pipeline.failure_topic,
            trigger=triggers.trigger,
            dead_letter_alarms=[triggers.dead_letter_alarm, serving.capture_dead_letter_alarm],
            serving_alarms=serving.alarms.alarms,
        )
        self.feature_set_alarms = FeatureSetAlarms(
            self, "FeatureSetAlarms", feature_sets=pipeline.models.feature_sets, topic=pipeline.failure_topic
        )
        CfnOutput(self, "FunctionMonitor", value=self.monitor.function_name)
        for name, alarms in self.monitoring.models.items():  # per model: DriftAlarmBreastCancer, …
            CfnOutput(self, model_output_key("DriftAlarm", name), value=alarms.drift.alarm_name)
            CfnOutput(self, model_output_key("QualityAlarm", name), value=alarms.quality.alarm_name)
        CfnOutput(self, "DashboardName", value=self.monitoring.dashboard.dashboard_name)
