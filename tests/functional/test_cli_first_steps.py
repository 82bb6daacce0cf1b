"""A new user's first commands, as the README gives them, against a deployment of the two bundled models (in moto):
they work as written, or say exactly what to change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from mlops.core.config import load_config
from mlops.core.runs import start_run
from mlops.tools import cli
from mlops.tools.platform import Platform
from mlops.tools.samples import example_config_path

pytestmark = pytest.mark.functional


@pytest.fixture
def mlops(account, monkeypatch) -> Callable[..., Result]:
    """``mlops …`` against a platform whose outputs name the moto account's resources and two models."""
    r = account.resources
    outputs = {
        "ArtifactBucket": r.artifact_bucket,
        "LandingBucket": r.landing_bucket,
        "RunsTable": r.runs_table,
        "ModelsTable": r.models_table,
        "LineageTable": r.lineage_table,
        "Models": "breast-cancer,diabetes",
    }
    deployed = Platform(session=account.session, outputs=outputs, env="dev")
    monkeypatch.setattr(Platform, "local", classmethod(lambda cls, state_file=None: deployed))
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(cli.app, list(args))

    return run


def started(account: Any, model: str, run_id: str) -> None:
    start_run(account.stores, load_config(example_config_path(model)), run_id, {"reason": "s3_upload"})


def test_given_two_models_when_runs_list_is_run_as_written_then_it_lists_both_models_runs(account, mlops):
    """It answered 'this deployment has 2 models (breast-cancer, diabetes): give --model'."""
    started(account, "breast-cancer", "20261122T100000Z-aaaaaa")
    started(account, "diabetes", "20261122T110000Z-bbbbbb")
    out = mlops("runs", "list")
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split()[:2] == ["model", "run"]
    assert lines[1].split()[:2] == ["diabetes", "20261122T110000Z-bbbbbb"]  # newest first, across models
    assert lines[2].split()[:2] == ["breast-cancer", "20261122T100000Z-aaaaaa"]
    only = mlops("runs", "list", "--model", "breast-cancer")
    assert only.exit_code == 0 and "bbbbbb" not in only.output and "aaaaaa" in only.output


def test_given_a_fresh_deployment_when_run_with_sample_then_the_models_bundled_data_lands_and_starts_a_run(
    account, mlops, monkeypatch
):
    """After `mlops local up` there was nothing to train with: no sample file shipped, no --sample."""
    import io

    import pandas as pd

    from mlops.tools.samples import bundled

    monkeypatch.setattr(Platform, "config", lambda self: load_config(example_config_path(self.model)))
    monkeypatch.setattr(Platform, "run_for_upload", lambda self, key, etag, timeout=0: "r-1")
    out = mlops("run", "--sample", "--model", "diabetes", "--no-wait")
    assert out.exit_code == 0, out.output
    landing = account.resources.landing_bucket
    assert f"uploaded s3://{landing}/diabetes/sample.csv" in out.output and "run r-1 started" in out.output
    body = account.session.client("s3").get_object(Bucket=landing, Key="diabetes/sample.csv")["Body"].read()
    assert pd.read_csv(io.BytesIO(body)).shape == bundled("diabetes").shape


def test_given_a_feature_set_when_the_features_commands_run_then_they_list_ingest_show_and_get(
    account, mlops, monkeypatch, tmp_path
):
    """`mlops features list|show|ingest|get` against a deployment with the customers feature set and a model that
    takes features from it (the upload is ingested here as the rule's function would)."""
    import json

    from mlops.core.config import ModelSet
    from mlops.steps.ingest_features import ingest_upload
    from tests.feature_store import churn_config, csv_bytes, customers, feature_rows

    catalog = ModelSet([("churn.yaml", churn_config())], customers())
    monkeypatch.setattr(Platform, "catalog", lambda self: catalog)
    monkeypatch.setattr(
        Platform, "stores", property(lambda self: account.stores)
    )  # the moto account's, with its online table
    listed = mlops("features", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)["feature_sets"][0] | {"features": None} == {
        "name": "customers",
        "entity": ["customer_id"],
        "features": None,
        "ttl_hours": 720.0,
        "source": "features/customers/",
        "online": True,
        "models": ["churn"],
    }
    data = tmp_path / "customers.csv"
    data.write_bytes(csv_bytes(feature_rows(customers_n=2)))
    out = mlops("features", "ingest", str(data), "--no-wait")
    assert out.exit_code == 0 and "features/customers/customers.csv" in out.output, out.output
    landing = account.resources.landing_bucket
    ingest_upload(
        account.stores, customers(), landing, "features/customers/customers.csv", online=account.stores.online
    )
    got = mlops("features", "get", "customers", "c001")
    assert got.exit_code == 0, got.output
    assert json.loads(got.output)["values"]["plan"] == feature_rows(customers_n=2).plan.iloc[-1]
    shown = json.loads(mlops("features", "show", "customers").output)
    assert shown["registry_version"]["version"] == 1 and shown["models"] == [{"model": "churn", "versions": []}]
    missing = mlops("features", "get", "customers", "nobody")
    assert missing.exit_code == 1 and "no value for entity 'nobody'" in missing.output
