"""#29: a snapshot's statistics past one function — extract cuts it into shards, each child of the Distributed Map
writes its partial statistics, the merge checks it has them all and writes the one-pass artifact.

Against moto's S3 and DynamoDB, the steps called as the state machine calls them (the Map itself, and moto's gaps
in it, are tests/functional/test_distributed_map.py; the whole path through the emulator is
tests/e2e/test_many_models.py)."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest

from mlops.core.artifact_io import get_json
from mlops.data.engine import EngineLimits, connect
from mlops.data.partials import IncompletePartials, statistics_drift
from mlops.data.stats import column_drift
from mlops.data.table import SqlTable
from mlops.steps import extract as extract_module
from mlops.steps.analyze import analyze, analyze_shard, merge_statistics
from mlops.steps.extract import extract
from mlops.tools.samples import customers
from tests.functional.test_steps import churn_config

pytestmark = pytest.mark.functional


def _upload_two_objects(account, seed: int = 0) -> dict:
    account.upload("churn/a.csv", customers(700, seed=seed).to_csv(index=False).encode())
    account.upload("churn/b.csv", customers(500, seed=seed + 1).to_csv(index=False).encode())
    return {"bucket": account.resources.landing_bucket, "prefix": "churn/"}


def _sharded(shards: int | None = 3):
    data = {"prefix": "churn/", "scope": "prefix", **({"shards": shards} if shards else {})}
    return churn_config(data=data)


def _map(account, ctx, ex) -> list[dict]:
    """What the Distributed Map does: one child per object its ItemReader lists under the shards' prefix."""
    store = account.stores.artifacts
    return [analyze_shard(ctx, key=key, etag=None, plan=ex.shards.plan) for key in store.keys(ex.shards.prefix)]


def test_given_data_shards_when_extracted_then_the_snapshot_is_cut_into_listed_shards_with_a_plan(account):
    ctx = account.context(_sharded(3))
    ex = extract(ctx, source=_upload_two_objects(account))
    assert ex.rows == 1200 and ex.shards is not None and ex.shards.count == 3
    manifest = get_json(account.stores.artifacts, ex.manifest["uri"])
    listed = manifest["shards"]
    assert [s["rows"] for s in listed] == [400, 400, 400]  # contiguous ranges of the snapshot, nearly equal
    assert account.stores.artifacts.keys(ex.shards.prefix) == [s["key"] for s in listed]
    assert ex.shards.prefix == f"runs/{ctx.run_id}/extract/shards/"
    assert ex.shards.results.startswith(f"runs/{ctx.run_id}/")  # the Map's results: under the run, where it may write
    assert get_json(account.stores.artifacts, ex.shards.plan["uri"])["bins"] == {}  # no champion: nothing to count into

    small = account.context(_sharded(None))  # data.shard_rows (2M) holds 1,200 rows: one pass
    assert extract(small, source={"bucket": account.resources.landing_bucket, "prefix": "churn/"}).shards is None


def test_given_shards_when_each_is_analyzed_and_merged_then_the_statistics_are_the_one_pass_statistics(account):
    ctx = account.context(_sharded(3))
    ex = extract(ctx, source=_upload_two_objects(account))
    children = _map(account, ctx, ex)
    assert len(children) == 3 and all(c["partial"].endswith(".partial") for c in children)
    merged_ref = merge_statistics(ctx, shards=ex.shards, manifest=ex.manifest)
    assert merged_ref.shards == 3 and merged_ref.rows == 1200
    merged = get_json(account.stores.artifacts, merged_ref.statistics["uri"])
    one_pass = get_json(account.stores.artifacts, analyze(ctx, snapshot=ex.snapshot).statistics["uri"])
    assert merged["num_rows"] == one_pass["num_rows"] == 1200
    assert merged["features"].keys() == one_pass["features"].keys()
    for name, single in one_pass["features"].items():
        got = merged["features"][name]
        assert got["type"] == single["type"], name
        for exact in ("count", "missing"):
            assert got[exact] == single[exact], (name, exact)
        # distinct: exact for a categorical column's few values, HLL's estimate for a numeric one (1.6% s.e.)
        if single["type"] == "categorical":
            assert got["distinct"] == single["distinct"], name
        else:
            assert got["distinct"] == pytest.approx(single["distinct"], rel=0.05), name
        for moment in ("mean", "std", "min", "max"):
            if single.get(moment) is not None:
                assert math.isclose(got[moment], single[moment], rel_tol=1e-9), (name, moment)
        if single.get("frequencies"):
            assert got["frequencies"] == single["frequencies"], name
    assert merged["target"]["frequencies"] == one_pass["target"]["frequencies"]


def test_given_a_champion_then_every_shard_counts_into_its_edges_and_the_merged_drift_is_the_one_pass_drift(
    account, monkeypatch
):
    first = account.context(churn_config(data={"prefix": "churn/", "scope": "prefix"}))
    champion = get_json(
        account.stores.artifacts,
        analyze(first, snapshot=extract(first, source=_upload_two_objects(account)).snapshot).statistics["uri"],
    )
    monkeypatch.setattr(extract_module, "champion_statistics", lambda stores, model: champion)
    account.upload(
        "churn/a.csv",
        customers(700, seed=7, shift={"income": 1.5, "age": 1.0}, new_plan_fraction=0.1).to_csv(index=False).encode(),
    )
    ctx = account.context(_sharded(4))
    ex = extract(ctx, source={"bucket": account.resources.landing_bucket, "prefix": "churn/"})
    _map(account, ctx, ex)
    merged = get_json(
        account.stores.artifacts, merge_statistics(ctx, shards=ex.shards, manifest=ex.manifest).statistics["uri"]
    )
    with tempfile.TemporaryDirectory() as tmp, connect(EngineLimits.for_function()) as con:
        path = Path(tmp) / "snapshot.parquet"
        path.write_bytes(account.stores.artifacts.get_bytes(ex.snapshot["uri"]))
        table = SqlTable(con, [str(path)])
        for name, baseline in champion["features"].items():
            expected = column_drift(baseline, table, name)
            got = statistics_drift(baseline, merged["features"][name])
            assert (expected is None) == (got is None), name
            if expected is not None:
                assert got.measure == expected.measure and got.value == pytest.approx(expected.value, abs=1e-12), name
    assert merged["features"]["income"]["bins"]["edges"] == champion["features"]["income"]["histogram"]["edges"]


def test_given_a_shard_without_its_partial_when_merged_then_the_run_fails_naming_it(account):
    ctx = account.context(_sharded(3))
    ex = extract(ctx, source=_upload_two_objects(account))
    keys = account.stores.artifacts.keys(ex.shards.prefix)
    for key in keys[:2]:  # the third child never wrote its partial (AWS and the emulator fail the Map first)
        analyze_shard(ctx, key=key, etag=None, plan=ex.shards.plan)
    with pytest.raises(IncompletePartials, match=r"missing partials for 1 shard\(s\): \[.*part-00002\.parquet"):
        merge_statistics(ctx, shards=ex.shards, manifest=ex.manifest)
    step = account.stores.meta.get_run("churn", ctx.run_id)["steps"]["analyze"]
    assert step["status"] == "FAILED" and "part-00002" in step["error"]["message"]


def test_given_a_shard_that_cannot_be_read_then_the_child_fails_and_the_run_names_the_shard(account):
    ctx = account.context(_sharded(3))
    ex = extract(ctx, source=_upload_two_objects(account))
    gone = f"{ex.shards.prefix}part-00009.parquet"
    with pytest.raises(Exception):  # noqa: B017 - S3's own error, whatever the client raises for a missing key
        analyze_shard(ctx, key=gone, etag=None, plan=ex.shards.plan)
    step = account.stores.meta.get_run("churn", ctx.run_id)["steps"]["analyze"]
    assert step["status"] == "FAILED" and step["error"]["message"].startswith(f"shard {gone}:")
    assert not account.stores.artifacts.keys(f"runs/{ctx.run_id}/analyze/partials/")


def _prepared(account, cfg, rows=6000):
    from mlops.steps.prepare import prepare
    from mlops.steps.validate_data import validate_data

    ctx = account.context(cfg)
    ex = extract(ctx, source=account.upload("churn/big.csv", customers(rows).to_csv(index=False).encode()))
    an = analyze(ctx, snapshot=ex.snapshot)
    vd = validate_data(ctx, snapshot=ex.snapshot, statistics=an.statistics, manifest=ex.manifest)
    return ctx, prepare(ctx, snapshot=ex.snapshot, schema=vd.usable_schema)


def test_given_splits_larger_than_a_lambda_holds_then_plan_trials_chooses_fargate_or_fails_naming_the_setting(
    account, monkeypatch
):
    """The refit's rows (train + validation) decide the path: Lambda while they fit run_trial's memory, else a
    Fargate task with the trials on prepare's sample. What cannot run fails before any trial starts, naming the
    size, the memory and the setting that lifts it — never a function killed for memory."""
    from mlops.core.errors import DataTooLargeError
    from mlops.steps.plan import plan_trials
    from mlops.steps.train import run_trial

    training: dict = {"candidates": [{"family": "logistic_regression", "params": {"C": [1.0]}}]}
    # GIVEN 4,199 training and 901 validation rows of 6 features (12 columns one-hot encoded, with the label), and
    # a sample of 1,000 asked for
    ctx, pr = _prepared(account, churn_config(training=training | {"tune_rows": 1000}))
    assert pr.rows["train_sample"] == 1000 and pr.rows["validation_sample"] == round(901 * 1000 / 4199), pr.rows
    # WHEN they fit run_trial's 3,008 MB THEN the run stays on Lambda, the trials on the whole split
    monkeypatch.setenv("MLOPS_TRIAL_MEMORY_MB", "3008")
    plan = plan_trials(ctx, dataset=pr.dataset)
    assert (plan.compute, plan.fargate, plan.tune_rows) == ("lambda", None, 4199)
    assert not any(t.sample for t in plan.trials)
    # WHEN a Lambda holds ~2,184 rows of them (1 MB: 12 columns one-hot encoded) THEN the refit goes to Fargate,
    # the trials on the sample
    monkeypatch.setenv("MLOPS_TRIAL_MEMORY_MB", "1")
    plan = plan_trials(ctx, dataset=pr.dataset)
    assert (plan.compute, plan.tune_rows) == ("fargate", 1000) and all(t.sample for t in plan.trials)
    trial = run_trial(ctx, dataset=pr.dataset, trial=plan.trials[0])  # fits the sample, scores validation's
    assert trial.status == "SUCCEEDED" and trial.sample and trial.value is not None
    # AND the refit model is evaluated on the test split's sample in the same proportion (a test split that large
    # would not fit evaluate's Lambda either: at 10M rows it was killed at 2,048 MB), the record saying so
    from mlops.core.artifact_io import get_json
    from mlops.steps.evaluate import evaluate
    from mlops.steps.train import select_and_refit

    refit = select_and_refit(ctx, dataset=pr.dataset, trials=[trial])
    evaluated = evaluate(ctx, dataset=pr.dataset, model=refit.model)
    assert pr.rows["test_sample"] == round(pr.rows["test"] * 1000 / 4199)
    assert get_json(account.stores.artifacts, evaluated.evaluation["uri"])["rows"] == {
        "split": "test_sample",
        "scored": pr.rows["test_sample"],
        "test": pr.rows["test"],
    }
    assert plan.fargate == {"cpu": "4096", "memory": "30720", "ephemeral_gb": 50, "timeout_s": 14400, "spot": False}
    # WHEN the config pins Lambda THEN the run fails naming the setting
    ctx2, pr2 = _prepared(account, churn_config(training=training | {"compute": "lambda"}))
    too_large = r"5,100 rows x 12 columns \(one-hot encoded\).*1 MB Lambda.*training.compute is lambda"
    with pytest.raises(DataTooLargeError, match=too_large):
        plan_trials(ctx2, dataset=pr2.dataset)
    step = account.stores.meta.get_run("churn", ctx2.run_id)["steps"]["plan_trials"]
    assert step["status"] == "FAILED" and "set it to auto (or fargate)" in step["error"]["message"]
    # WHEN no sample was written (the whole split is below tune_rows) and the split does not fit a trial
    ctx3, pr3 = _prepared(account, churn_config())
    with pytest.raises(DataTooLargeError, match=r"4,199 rows x 12 columns.*set training.tune_rows below 1,000,000"):
        plan_trials(ctx3, dataset=pr3.dataset)
