"""Shared fixtures: an in-process moto account with the project's resources, and stores over it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from mlops.core.clock import new_run_id
from mlops.core.config import ProjectConfig, load_config, parse_config
from mlops.core.context import StepContext, Stores
from mlops.core.runs import start_run
from mlops.local.assembly import STATE_DIR_ENV
from mlops.local.provision import create_resources
from mlops.tools.samples import example_config_path
from mlops.wiring.runtime import Resources, make_stores

# The tests' emulators keep their state (local.json, clocks, logs, the template cache) in a folder of their own: a
# `mlops local up` running in this checkout keeps its `.mlops/local.json`, and the CLI keeps finding it (#27).
# Kept between sessions (the cache), and inherited by the processes the tests start.
REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_STATE_DIR = REPO_ROOT / ".mlops" / "tests"
os.environ.setdefault(STATE_DIR_ENV, str(TEST_STATE_DIR))
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ServerlessMLOpsTests")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "serverless-mlops")
for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
    os.environ[var] = "testing"


@dataclass
class Account:
    session: boto3.session.Session
    resources: Resources
    stores: Stores

    def upload(self, key: str, body: bytes) -> dict[str, Any]:
        self.session.client("s3").put_object(Bucket=self.resources.landing_bucket, Key=key, Body=body)
        return {"bucket": self.resources.landing_bucket, "keys": [key]}

    def context(self, config: ProjectConfig, trigger: dict | None = None) -> StepContext:
        run_id = new_run_id()
        start_run(self.stores, config, run_id, trigger or {"reason": "test"})
        return StepContext(run_id=run_id, config=config, stores=self.stores)


@pytest.fixture
def account() -> Iterator[Account]:
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        resources = create_resources(session)
        yield Account(session, resources, make_stores(resources, session))


@pytest.fixture
def starter_components(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The starter project's components/ package importable (as in a project made by `mlops init`), and
    tests.bad_components with it; forgotten after the test."""
    from mlops.tools.samples import STARTER

    monkeypatch.syspath_prepend(str(STARTER))
    yield
    for name in [m for m in sys.modules if m.startswith(("components", "tests.bad_components"))]:
        del sys.modules[name]


@pytest.fixture
def lambda_env(account: Account, monkeypatch: pytest.MonkeyPatch) -> Iterator[Account]:
    """The deployed functions' environment, pointing at the moto account; caches reset as on a cold start."""
    from mlops.core.constants import ENV_CONFIG_URI
    from mlops.local.lambda_runtime import reset_caches

    for key, value in account.resources.as_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(ENV_CONFIG_URI, str(example_config_path("breast-cancer")))
    reset_caches()
    yield account
    reset_caches()


def load_event(name: str) -> dict:
    import json
    from pathlib import Path

    return json.loads((Path(__file__).resolve().parents[1] / "events" / f"{name}.json").read_text())


# The customers sample (mlops.tools.samples.customers) as a model: for the schema and validation checks' tests.
CHURN_CONFIG = parse_config(
    {
        "name": "churn",
        "data": {"prefix": "churn/"},
        "target": "churn",
        "id_column": "customer_id",
        "training": {"candidates": [{"family": "logistic_regression"}]},
    }
)

QUICK_TRAINING = {"candidates": [{"family": "logistic_regression", "params": {"C": [1.0]}}]}


def quick_config_file(directory: Path, name: str = "breast-cancer", **sections: Any) -> Path:
    """An example config with one candidate (a single logistic regression) and ``sections`` replaced, written
    under ``directory``: for emulator tests about what happens around a run, not about the tuning."""
    raw = yaml.safe_load(example_config_path(name).read_text())
    raw["training"] = QUICK_TRAINING
    raw.update(sections)
    path = directory / f"{name}-quick.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="session")
def breast_cancer_config() -> ProjectConfig:
    return load_config(example_config_path("breast-cancer"))


@pytest.fixture(scope="session")
def quick_breast_cancer_config(breast_cancer_config: ProjectConfig) -> ProjectConfig:
    """The example with one candidate (a single logistic regression): for tests that need a champion to serve,
    not the tuning — a chain in a few seconds instead of a dozen."""
    from mlops.core.config import parse_config

    raw = breast_cancer_config.model_dump(mode="json", exclude_defaults=True)
    raw["training"] = QUICK_TRAINING
    return parse_config(raw)
