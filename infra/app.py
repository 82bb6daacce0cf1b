"""The CDK app: storage, pipeline, triggers, serving and monitoring stacks for one environment
(``-c env=dev|staging|prod``)."""

from __future__ import annotations

import json
import os
from typing import Any

from aws_cdk import Annotations, App, Environment, Tags

from infra import nag
from infra.settings import ROOT, EnvironmentSettings, settings_from_context
from infra.stacks.monitoring import MonitoringStack
from infra.stacks.pipeline import PipelineStack
from infra.stacks.serving import ServingStack
from infra.stacks.storage import StorageStack
from infra.stacks.triggers import TriggersStack


def build(app: App, settings: EnvironmentSettings) -> dict[str, object]:
    env = Environment(account=settings.account or os.environ.get("CDK_DEFAULT_ACCOUNT"), region=settings.region)
    prefix = settings.stack_prefix
    storage = StorageStack(app, f"{prefix}-Storage", settings=settings, env=env)
    pipeline = PipelineStack(app, f"{prefix}-Pipeline", settings=settings, storage=storage, env=env)
    triggers = TriggersStack(app, f"{prefix}-Triggers", settings=settings, storage=storage, pipeline=pipeline, env=env)
    serving = ServingStack(app, f"{prefix}-Serving", settings=settings, storage=storage, pipeline=pipeline, env=env)
    monitoring = MonitoringStack(
        app,
        f"{prefix}-Monitoring",
        settings=settings,
        storage=storage,
        pipeline=pipeline,
        triggers=triggers,
        serving=serving,
        env=env,
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
    nag.apply(app)
    return {
        "storage": storage,
        "pipeline": pipeline,
        "triggers": triggers,
        "serving": serving,
        "monitoring": monitoring,
    }


def cdk_json_context() -> dict[str, Any]:
    """cdk.json's context, so ``python -m infra.app`` synthesizes like ``npx cdk synth`` (CLI values win)."""
    return dict(json.loads((ROOT / "cdk.json").read_text()).get("context", {}))


def make_app(context: dict[str, Any] | None = None, outdir: str | None = None) -> App:
    outdir = outdir or os.environ.get("CDK_OUTDIR") or str(ROOT / "cdk.out")
    return App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)


def main() -> None:
    app = make_app()
    build(app, settings_from_context(app.node.try_get_context))
    app.synth()


if __name__ == "__main__":
    main()
