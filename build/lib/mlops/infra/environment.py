"""One environment's five stacks (storage, pipeline, triggers, serving, monitoring) under any scope: the app, or
a stage of the delivery pipeline."""

from __future__ import annotations

from typing import Any

from aws_cdk import Annotations, Environment, Tags

from constructs import Construct
from mlops.infra import nag
from mlops.infra.constructs.smoke_tester import SmokeTester
from mlops.infra.settings import EnvironmentSettings
from mlops.infra.stacks.monitoring import MonitoringStack
from mlops.infra.stacks.pipeline import PipelineStack
from mlops.infra.stacks.serving import ServingStack
from mlops.infra.stacks.storage import StorageStack
from mlops.infra.stacks.triggers import TriggersStack


def build_environment(
    scope: Construct,
    settings: EnvironmentSettings,
    env: Environment | None = None,
    smoke_tester_for: str | None = None,
) -> dict[str, object]:
    """The five stacks of one environment under ``scope`` (the app, or a delivery pipeline's stage). Stack names
    are explicit, so a stage deploys the very stacks ``cdk deploy -c env=<name>`` would. ``smoke_tester_for``:
    the delivery account whose pipeline smoke-tests this environment (adds the role it assumes)."""
    prefix = settings.stack_prefix

    def named(suffix: str) -> dict[str, Any]:
        return {"stack_name": f"{prefix}-{suffix}", "env": env}

    storage = StorageStack(scope, f"{prefix}-Storage", settings=settings, **named("Storage"))
    pipeline = PipelineStack(scope, f"{prefix}-Pipeline", settings=settings, storage=storage, **named("Pipeline"))
    triggers = TriggersStack(
        scope, f"{prefix}-Triggers", settings=settings, storage=storage, pipeline=pipeline, **named("Triggers")
    )
    serving = ServingStack(
        scope, f"{prefix}-Serving", settings=settings, storage=storage, pipeline=pipeline, **named("Serving")
    )
    monitoring = MonitoringStack(
        scope,
        f"{prefix}-Monitoring",
        settings=settings,
        storage=storage,
        pipeline=pipeline,
        triggers=triggers,
        serving=serving,
        **named("Monitoring"),
    )
    stacks: dict[str, object] = {
        "storage": storage,
        "pipeline": pipeline,
        "triggers": triggers,
        "serving": serving,
        "monitoring": monitoring,
    }
    if smoke_tester_for is not None:
        stacks["smoke_tester"] = SmokeTester(
            monitoring,
            "SmokeTester",
            stack_prefix=prefix,
            delivery_account=smoke_tester_for or None,
            models=pipeline.models,
            landing=storage.store.landing,
            tables=storage.tables,
            parameters=[pipeline.catalog_parameter, *pipeline.config_parameters.values()],
            state_machine=pipeline.state_machine,
            api=serving.api.api,
            api_key=serving.api.api_key,
        )
    for stack in (storage, pipeline, triggers, serving, monitoring):
        Tags.of(stack).add("project", "serverless-mlops")
        Tags.of(stack).add("environment", settings.name)
        nag.acknowledge_grant_wildcards(stack)
    if not settings.notification_email:
        Annotations.of(pipeline.failure_topic).add_warning_v2(
            "mlops:no-subscriber",
            f"environments.{settings.name}.notification_email is not set: failed runs and alarms publish to "
            "the notifications topic with nobody subscribed",
        )
    nag.acknowledge(storage.store.access_logs, "AwsSolutions-S1")
    nag.acknowledge(triggers.rules.dead_letters, "AwsSolutions-SQS3")
    return stacks
