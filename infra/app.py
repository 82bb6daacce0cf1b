"""The CDK app: storage, pipeline, triggers, serving and monitoring stacks for one environment
(``-c env=dev|staging|prod``), or the delivery pipeline that deploys them in order (``-c env=delivery``)."""

from __future__ import annotations

import json
import os
from typing import Any

from aws_cdk import App, Environment

from infra import nag
from infra.environment import build_environment
from infra.settings import ROOT, EnvironmentSettings, delivery_from_context, settings_from_context


def build(app: App, settings: EnvironmentSettings) -> dict[str, object]:
    """One environment's stacks in ``app``, checked by cdk-nag."""
    env = Environment(account=settings.account or os.environ.get("CDK_DEFAULT_ACCOUNT"), region=settings.region)
    stacks = build_environment(app, settings, env=env)
    nag.apply(app)
    return stacks


def cdk_json_context() -> dict[str, Any]:
    """cdk.json's context, so ``python -m infra.app`` synthesizes like ``npx cdk synth`` (CLI values win)."""
    return dict(json.loads((ROOT / "cdk.json").read_text()).get("context", {}))


def make_app(context: dict[str, Any] | None = None, outdir: str | None = None) -> App:
    outdir = outdir or os.environ.get("CDK_OUTDIR") or str(ROOT / "cdk.out")
    return App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)


def main(context: dict[str, Any] | None = None, outdir: str | None = None) -> None:
    app = make_app(context, outdir)
    if app.node.try_get_context("env") == "delivery":
        from infra.stacks.delivery import build_delivery

        build_delivery(app, delivery_from_context(app.node.try_get_context))
    else:
        build(app, settings_from_context(app.node.try_get_context))
    app.synth()


if __name__ == "__main__":
    main()
