"""One synthesis per session (layers skipped: placeholders, no downloads); cdk-nag runs during it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from mlops.infra.app import build, make_app
from mlops.infra.settings import settings_from_context
from mlops.local.template import load_templates


class Synth:
    def __init__(self, outdir: Path, env: str) -> None:
        app = make_app(context={"mlops:skip_layer_build": "true", "env": env}, outdir=str(outdir))
        self.settings = settings_from_context(app.node.try_get_context)
        self.stacks = build(app, self.settings)
        self.assembly = app.synth()  # raises if cdk-nag reports an unacknowledged finding
        self.outdir = outdir
        self.templates = load_templates(outdir)

    def template(self, key: str) -> Template:
        return Template.from_json(self.templates[f"{self.settings.stack_prefix}-{key.title()}"])

    def raw(self, key: str) -> dict:
        return self.templates[f"{self.settings.stack_prefix}-{key.title()}"]


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    yield Synth(tmp_path_factory.mktemp("cdk.out"), "dev")


@pytest.fixture(scope="session")
def prod_synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    yield Synth(tmp_path_factory.mktemp("cdk.out.prod"), "prod")
