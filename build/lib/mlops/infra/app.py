"""The CDK app: storage, pipeline, triggers, serving and monitoring stacks for one environment
(``-c env=dev|staging|prod``), or the delivery pipeline that deploys them in order (``-c env=delivery``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment

from mlops.core.project import Project
from mlops.infra import nag
from mlops.infra.environment import build_environment
from mlops.infra.settings import PROJECT_CONTEXT, EnvironmentSettings, delivery_from_context, settings_from_context


def build(app: App, settings: EnvironmentSettings) -> dict[str, object]:
    """One environment's stacks in ``app``, checked by cdk-nag."""
    env = Environment(account=settings.account or os.environ.get("CDK_DEFAULT_ACCOUNT"), region=settings.region)
    stacks = build_environment(app, settings, env=env)
    nag.apply(app)
    return stacks


def cdk_json_context(project: Project | None = None) -> dict[str, Any]:
    """The project's cdk.json context, so ``python -m mlops.infra.app`` synthesizes like ``npx cdk synth``."""
    project = project or Project.find()
    return {**project.context(), PROJECT_CONTEXT: str(project.root)}


def make_app(context: dict[str, Any] | None = None, outdir: str | None = None, project: Project | None = None) -> App:
    project = project or Project.find()
    outdir = outdir or os.environ.get("CDK_OUTDIR") or str(project.root / "cdk.out")
    return App(context={**cdk_json_context(project), **(context or {})}, outdir=outdir)


def populate(app: App) -> None:
    """The stacks the app's context asks for: one environment's (``-c env=<name>``), or the delivery pipeline's."""
    if app.node.try_get_context("env") == "delivery":
        from mlops.infra.stacks.delivery import build_delivery

        build_delivery(app, delivery_from_context(app.node.try_get_context))
    else:
        build(app, settings_from_context(app.node.try_get_context))


class MlopsApp(App):
    """The platform as a project's CDK app: its models and components with the platform's stacks, functions and
    layers. A project's ``app.py``::

        from pathlib import Path
        from mlops.infra import MlopsApp

        MlopsApp(project_dir=Path(__file__).parent).synth()

    ``cdk synth -c env=<name>`` (or ``cdk deploy``) then builds that environment of ``cdk.json``."""

    def __init__(self, *, project_dir: Path | str, context: dict[str, Any] | None = None, outdir: str | None = None):
        project = Project(Path(project_dir).resolve())
        super().__init__(
            context={**cdk_json_context(project), **(context or {})},
            outdir=outdir or os.environ.get("CDK_OUTDIR") or str(project.root / "cdk.out"),
        )
        populate(self)


def main(context: dict[str, Any] | None = None, outdir: str | None = None) -> None:
    app = make_app(context, outdir)
    populate(app)
    app.synth()


if __name__ == "__main__":
    main()
