"""Bad objects among good ones: each object read and checked on its own, every bad one named and quarantined, the
run going on with the good ones when they are enough; a failing check of the batch names the objects that carry
it; a change of labels stops the run unless the config allows it; a retrain on unchanged inputs is not promoted."""

from __future__ import annotations

import random

import numpy as np
import pytest

from mlops.core.artifact_io import get_json
from mlops.core.config import parse_config
from mlops.core.constants import CHAMPION
from mlops.core.errors import DataValidationError
from mlops.core.registry import push_schema
from mlops.core.runs import FAILED, finalize
from mlops.data.schema import infer_schema
from mlops.steps.analyze import analyze
from mlops.steps.extract import extract
from mlops.steps.validate_data import validate_data
from mlops.tools.samples import bundled, customers
from tests.chain import run_chain
from tests.conftest import QUICK_TRAINING

pytestmark = pytest.mark.functional


def churn_config(**overrides):
    raw = {
        "name": "churn",
        "data": {"prefix": "churn/", "scope": "prefix"},
        "target": "churn",
        "id_column": "customer_id",
        "training": QUICK_TRAINING,
    }
    raw.update(overrides)
    return parse_config(raw)


def _csv(df) -> bytes:
    return df.to_csv(index=False).encode()


def _dollars(df):
    """Rows of one file say "107$" in a numeric column (the issue's Carseats upload)."""
    out = df.copy()
    out["income"] = out["income"].astype(object)
    out.loc[out.index[:20], "income"] = "107$"
    return out


BAD = {
    "churn/semicolon.csv": (lambda s: customers(200, seed=s).to_csv(index=False, sep=";").encode(), "WRONG_DELIMITER"),
    "churn/garbage.csv": (lambda s: random.Random(s).randbytes(4096), "UNPARSEABLE_FILE"),
    "churn/dollars.csv": (lambda s: _csv(_dollars(customers(200, seed=s))), "WRONG_DTYPE"),
}


def test_given_seven_good_and_three_bad_objects_then_the_run_goes_on_with_the_seven_and_names_and_quarantines_each(
    account,
):
    cfg = churn_config()
    good = [f"churn/good-{i}.csv" for i in range(7)]
    for i, key in enumerate(good):
        account.upload(key, _csv(customers(200, seed=i)))
    for i, (key, (body, _)) in enumerate(BAD.items()):
        account.upload(key, body(100 + i))
    bucket = account.resources.landing_bucket
    ctx = account.context(cfg)

    # WHEN the ten are read in one run (as a coalesced run names them)
    out = extract(ctx, source={"bucket": bucket, "keys": good[:4] + list(BAD) + good[4:]})

    # THEN the seven good ones make the snapshot, and each bad one is named with its own problem and quarantined
    assert out.objects == 7 and out.set_aside == 3 and out.rows == 1400
    manifest = get_json(account.stores.artifacts, out.manifest["uri"])
    assert sorted(o["key"] for o in manifest["objects"]) == sorted(good)
    run = account.stores.meta.get_run("churn", ctx.run_id)
    assert {o["key"]: o["codes"] for o in run["set_aside"]} == {k: [code] for k, (_, code) in BAD.items()}
    dollars = next(o for o in run["set_aside"] if o["key"] == "churn/dollars.csv")["anomalies"][0]
    assert dollars["column"] == "income" and "107$" in dollars["description"]
    assert sorted(run["quarantined"]) == sorted(BAD)
    assert set(account.stores.meta.quarantined("churn")) == {f"{bucket}/{k}" for k in BAD}
    # the batch's report says so too, and the batch of good objects passes
    stats = analyze(ctx, snapshot=out.snapshot).statistics
    vd = validate_data(ctx, snapshot=out.snapshot, statistics=stats, manifest=out.manifest)
    assert vd.passed and vd.num_warnings >= 3
    report = get_json(account.stores.artifacts, vd.anomalies["uri"])
    assert {a["object"] for a in report["anomalies"] if a["code"] == "OBJECT_SET_ASIDE"} == set(BAD)

    # AND a prefix run skips the quarantined objects, naming each, and reads the seven
    ctx2 = account.context(cfg)
    again = extract(ctx2, source={"bucket": bucket, "prefix": "churn/"})
    assert again.objects == 7 and again.set_aside == 0
    assert {s["key"] for s in account.stores.meta.get_run("churn", ctx2.run_id)["skipped"]} == set(BAD)


def test_given_more_bad_objects_than_the_share_allows_then_the_run_fails_naming_each_and_finalize_quarantines_them(
    account,
):
    cfg = churn_config()
    account.upload("churn/good-0.csv", _csv(customers(200, seed=0)))
    for i, (key, (body, _)) in enumerate(BAD.items()):
        account.upload(key, body(i))
    ctx = account.context(cfg)
    with pytest.raises(DataValidationError) as raised:
        extract(ctx, source={"bucket": account.resources.landing_bucket, "prefix": "churn/"})
    message = str(raised.value)
    assert "3 of 4 objects are unusable (above validation.max_rejected_object_share=0.5)" in message
    assert all(f"{key} ({code})" in message for key, (_, code) in BAD.items())
    run = account.stores.meta.get_run("churn", ctx.run_id)
    assert {a["object"] for a in run["anomalies"]} == set(BAD)
    done = finalize(account.stores, "churn", ctx.run_id, FAILED, error={"type": "DataValidationError"}, config=cfg)
    assert done["status"] == FAILED
    run = account.stores.meta.get_run("churn", ctx.run_id)
    assert sorted(run["quarantined"]) == sorted(BAD)
    reasons = {k.split("/", 1)[1]: q["reason"] for k, q in account.stores.meta.quarantined("churn").items()}
    assert reasons == {k: code for k, (_, code) in BAD.items()}  # each for its own problem
    assert "retried_as" not in run  # one good object of four is not enough to go on with


def test_given_a_missing_rate_spike_carried_by_one_object_then_it_is_named_quarantined_and_the_run_retried_without_it(
    account,
):
    cfg = churn_config()
    base = customers(5000, seed=1)
    push_schema(account.stores, "churn", infer_schema(base, cfg), "inferred", "r0")
    keys = [f"churn/day-{i}.csv" for i in range(5)]
    for i, key in enumerate(keys):
        day = customers(300, seed=10 + i)
        if i == 3:
            day["tenure_months"] = np.nan  # the export of one day lost a column's values
        account.upload(key, _csv(day))
    source = {"bucket": account.resources.landing_bucket, "keys": keys}
    ctx = account.context(cfg)
    # the trigger records its source with the run; so does this test
    account.stores.meta.update_run("churn", ctx.run_id, {"source": source})
    ex = extract(ctx, source=source)
    assert ex.set_aside == 0  # structurally fine: a column of missing values is read as such
    vd = validate_data(
        ctx, snapshot=ex.snapshot, statistics=analyze(ctx, snapshot=ex.snapshot).statistics, manifest=ex.manifest
    )
    assert not vd.passed
    report = get_json(account.stores.artifacts, vd.anomalies["uri"])
    (spike,) = [a for a in report["anomalies"] if a["severity"] == "error"]
    assert (spike["code"], spike["column"]) == ("MISSING_RATE_SPIKE", "tenure_months")
    assert spike["objects"] == ["churn/day-3.csv"]  # the one file to replace

    finalize(account.stores, "churn", ctx.run_id, FAILED, error={"type": "DataValidationFailed"}, config=cfg)
    run = account.stores.meta.get_run("churn", ctx.run_id)
    assert run["quarantined"] == ["churn/day-3.csv"]
    (retry,) = account.stores.meta.take_pending("churn")  # the trigger starts it when this execution ends
    assert run["retried_as"] == retry["name"] and retry["reason"] == "retry"
    assert retry["source"]["keys"] == [k for k in keys if k != "churn/day-3.csv"]
    assert retry["detail"] == {"retry_of": ctx.run_id, "without": ["churn/day-3.csv"]}

    # the retry's batch passes; and a prefix run goes on without the quarantined day
    ctx2 = account.context(cfg)
    ex2 = extract(ctx2, source=retry["source"])
    vd2 = validate_data(
        ctx2, snapshot=ex2.snapshot, statistics=analyze(ctx2, snapshot=ex2.snapshot).statistics, manifest=ex2.manifest
    )
    assert vd2.passed and ex2.objects == 4
    ctx3 = account.context(cfg)
    assert extract(ctx3, source={"bucket": source["bucket"], "prefix": "churn/"}).objects == 4


def _labelled(names: dict[int, str], seed: int = 0):
    frame = bundled("breast-cancer").sample(frac=0.95, random_state=seed).reset_index(drop=True)
    frame["target"] = frame["target"].map(names)
    return frame


CLASSES = {0: "Malignant", 1: "Benign"}
RENAMED = {0: "malignant", 1: "benign"}


def _bc_config(**validation):
    raw = {
        "name": "breast-cancer",
        "data": {"prefix": "breast-cancer/"},
        "target": "target",
        "training": QUICK_TRAINING,
        "validation": validation,
    }
    return parse_config(raw)


def _champion(account, cfg) -> int:
    src = account.upload("breast-cancer/v1.csv", _csv(_labelled(CLASSES)))
    assert run_chain(account.context(cfg), src)["status"] == "SUCCEEDED"
    return account.stores.meta.get_alias(cfg.name, CHAMPION)


@pytest.mark.slow
def test_given_renamed_labels_then_the_run_stops_naming_them_and_the_champion_stays(account):
    cfg = _bc_config()
    champion = _champion(account, cfg)
    ctx = account.context(cfg)
    out = run_chain(ctx, account.upload("breast-cancer/v2.csv", _csv(_labelled(RENAMED, seed=1))))
    assert out["status"] == FAILED
    (change,) = [a for a in account.stores.meta.get_run(cfg.name, ctx.run_id)["anomalies"] if a["severity"] == "error"]
    assert change["code"] == "LABEL_SET_CHANGED" and change["column"] == "target"
    assert "new ['benign', 'malignant']; gone ['Benign', 'Malignant']" in change["description"]
    assert "validation.label_changes" in change["description"]
    assert account.stores.meta.get_alias(cfg.name, CHAMPION) == champion


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["approve", "accept"])
def test_given_renamed_labels_allowed_by_the_config_then_the_champion_is_not_compared_on_labels_it_never_knew(
    account, policy
):
    cfg = _bc_config(label_changes=policy)
    champion = _champion(account, cfg)
    ctx = account.context(cfg)
    out = run_chain(ctx, account.upload("breast-cancer/v2.csv", _csv(_labelled(RENAMED, seed=1))))
    warning = next(
        a for a in account.stores.meta.get_run(cfg.name, ctx.run_id)["anomalies"] if a["code"] == "LABEL_SET_CHANGED"
    )
    assert warning["severity"] == "warning"
    assert out["evaluate"]["value"] is not None
    evaluation = get_json(account.stores.artifacts, out["evaluate"]["evaluation"]["uri"])
    assert evaluation["champion"]["value"] is None and evaluation["champion"]["comparable"] is False
    assert evaluation["champion"]["labels"] == {
        "appeared": ["benign", "malignant"],
        "vanished": ["Benign", "Malignant"],
    }
    blessing = get_json(account.stores.artifacts, out["validate_model"]["report"]["uri"])
    assert "no_regression" not in {c["name"] for c in blessing["checks"]}
    assert next(c for c in blessing["checks"] if c["name"] == "label_set")["passed"]
    version = out["register"]["version"]
    if policy == "approve":  # a person decides, whatever registry.approval says
        assert out["status"] == "WAITING_APPROVAL" and not out["register"]["promoted"]
        assert account.stores.meta.get_alias(cfg.name, CHAMPION) == champion
    else:
        assert out["status"] == "SUCCEEDED" and account.stores.meta.get_alias(cfg.name, CHAMPION) == version


@pytest.mark.slow
def test_given_a_retrain_on_the_champions_data_config_and_code_then_it_is_not_promoted(account):
    cfg = _bc_config()
    champion = _champion(account, cfg)
    ctx = account.context(cfg)
    out = run_chain(ctx, {"bucket": account.resources.landing_bucket, "keys": ["breast-cancer/v1.csv"]})
    assert out["status"] == "REJECTED"
    (reason,) = account.stores.meta.get_run(cfg.name, ctx.run_id)["reasons"]
    assert reason.startswith(f"trained on the same data, config and code as champion v{champion}")
    assert account.stores.meta.get_alias(cfg.name, CHAMPION) == champion
    # new data is a new model: a tie on it may replace the champion
    more = run_chain(account.context(cfg), account.upload("breast-cancer/v3.csv", _csv(_labelled(CLASSES, seed=3))))
    blessing = get_json(account.stores.artifacts, more["validate_model"]["report"]["uri"])
    assert "changed" not in {c["name"] for c in blessing["checks"]}
