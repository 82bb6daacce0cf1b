"""Each step on real data against moto's S3 and DynamoDB."""

from __future__ import annotations

import pytest

from mlops.core.artifact_io import get_json
from mlops.core.config import parse_config
from mlops.core.errors import DataTooLargeError, DataValidationError
from mlops.data.frames import from_parquet_bytes, to_parquet_bytes
from mlops.steps.analyze import analyze
from mlops.steps.extract import extract
from mlops.steps.prepare import prepare
from mlops.steps.validate_data import validate_data
from mlops.tools.samples import bundled, customers

pytestmark = pytest.mark.functional


def churn_config(**overrides):
    raw = {
        "name": "churn",
        "data": {"prefix": "churn/"},
        "target": "churn",
        "id_column": "customer_id",
        "training": {"candidates": [{"family": "logistic_regression", "params": {"C": [1.0]}}]},
    }
    raw.update(overrides)
    return parse_config(raw)


def test_given_files_in_three_formats_under_a_prefix_when_extracted_then_one_snapshot_with_a_manifest(account):
    cfg = churn_config(data={"prefix": "churn/", "scope": "prefix"})
    parts = [customers(100, seed=s) for s in range(3)]
    account.upload("churn/a.csv", parts[0].to_csv(index=False).encode())
    account.upload("churn/b.parquet", to_parquet_bytes(parts[1]))
    account.upload("churn/c.jsonl", parts[2].to_json(orient="records", lines=True).encode())
    account.upload("churn/notes.txt", b"ignored: not a data file")
    ctx = account.context(cfg)
    out = extract(ctx, source={"bucket": account.resources.landing_bucket, "prefix": "churn/"})
    assert out.rows == 300 and out.objects == 3
    manifest = get_json(account.stores.artifacts, out.manifest["uri"])
    assert [o["key"] for o in manifest["objects"]] == ["churn/a.csv", "churn/b.parquet", "churn/c.jsonl"]
    assert all(o["etag"] and o["version_id"] for o in manifest["objects"])
    assert manifest["snapshot"]["sha256"] == out.snapshot["sha256"]
    assert out.snapshot["uri"].endswith(f"runs/{ctx.run_id}/extract/snapshot.parquet")
    snap = from_parquet_bytes(account.stores.artifacts.get_bytes(out.snapshot["uri"]))
    assert sorted(snap["customer_id"]) == sorted(c for p in parts for c in p["customer_id"])
    run = account.stores.meta.get_run("churn", ctx.run_id)
    assert run["steps"]["extract"]["status"] == "SUCCEEDED"
    assert account.stores.meta.executions(ctx.run_id)[0]["outputs"]["snapshot"]["sha256"] == out.snapshot["sha256"]


def test_given_data_above_the_size_guard_when_extracted_then_a_clear_error_not_an_oom(account):
    cfg = churn_config(data={"prefix": "churn/", "max_bytes": 1000})
    src = account.upload("churn/big.csv", customers(500).to_csv(index=False).encode())
    ctx = account.context(cfg)
    with pytest.raises(DataTooLargeError, match=r"above data\.max_bytes=1,000"):
        extract(ctx, source=src)
    step = account.stores.meta.get_run("churn", ctx.run_id)["steps"]["extract"]
    assert step["status"] == "FAILED" and step["error"]["type"] == "DataTooLargeError"


def test_given_more_data_than_the_ephemeral_storage_holds_when_extracted_then_it_refuses_before_reading(
    account, monkeypatch
):
    from mlops.data.engine import EngineLimits

    def read(obj):
        raise AssertionError("read an object the size guard should have refused")

    body = customers(500).to_csv(index=False).encode()
    src = account.upload("churn/big.csv", body)
    ctx = account.context(churn_config(data={"prefix": "churn/", "max_rows": 400}))  # max_rows: ignored, accepted
    monkeypatch.setattr(ctx.stores.reader, "read", read)
    with pytest.raises(DataTooLargeError) as err:
        extract(ctx, source=src, limits=EngineLimits(memory_mb=128, threads=1, disk_mb=0))
    message = str(err.value)
    assert f"1 object(s) hold {len(body):,} bytes" in message and f"about {2 * len(body):,} bytes" in message
    assert "has 0;" in message and "ephemeral storage" in message


def test_given_data_within_the_ephemeral_storage_when_extracted_then_max_rows_no_longer_refuses_it(account):
    from mlops.data.engine import EngineLimits

    frame = customers(500)
    src = account.upload("churn/big.parquet", to_parquet_bytes(frame))
    ctx = account.context(churn_config(data={"prefix": "churn/", "max_rows": 400}))
    out = extract(ctx, source=src, limits=EngineLimits(memory_mb=128, threads=1, disk_mb=64))
    assert out.rows == 500


def test_given_objects_in_three_formats_when_the_data_steps_run_then_no_step_loads_the_table_into_pandas(
    account, monkeypatch
):
    import fastparquet
    import pandas as pd

    cfg = churn_config(data={"prefix": "churn/", "scope": "prefix"})
    parts = [customers(300, seed=s) for s in range(3)]
    account.upload("churn/a.csv", parts[0].to_csv(index=False).encode())
    account.upload("churn/b.parquet", to_parquet_bytes(parts[1]))
    account.upload("churn/c.jsonl", parts[2].to_json(orient="records", lines=True).encode())

    def loaded(*args, **kwargs):
        raise AssertionError("a data step loaded a table into pandas")

    # GIVEN pandas' readers and fastparquet's frame reader refuse to run
    for owner, name in [(pd, "read_csv"), (pd, "read_json"), (pd, "concat"), (fastparquet.ParquetFile, "to_pandas")]:
        monkeypatch.setattr(owner, name, loaded)
    # WHEN extract, analyze, validate_data and prepare run THEN they finish, every row in a split
    ctx = account.context(cfg)
    ex = extract(ctx, source={"bucket": account.resources.landing_bucket, "prefix": "churn/"})
    an = analyze(ctx, snapshot=ex.snapshot)
    vd = validate_data(ctx, snapshot=ex.snapshot, statistics=an.statistics)
    out = prepare(ctx, snapshot=ex.snapshot, schema=vd.usable_schema)
    assert ex.rows == 900 and vd.passed and sum(out.rows.values()) == 900


def test_given_an_empty_upload_when_extracted_then_the_run_records_the_anomaly(account):
    ctx = account.context(churn_config())
    with pytest.raises(DataValidationError):
        extract(ctx, source=account.upload("churn/empty.csv", b""))
    run = account.stores.meta.get_run("churn", ctx.run_id)
    assert run["anomalies"][0]["code"] == "EMPTY_FILE"
    report = get_json(account.stores.artifacts, run["steps"]["extract"]["anomalies_uri"])
    assert report["anomalies"][0]["object"] == "churn/empty.csv"


def test_given_a_snapshot_when_analyzed_then_statistics_cover_every_feature(account):
    ctx = account.context(churn_config())
    ex = extract(ctx, source=account.upload("churn/a.csv", customers(1000).to_csv(index=False).encode()))
    out = analyze(ctx, snapshot=ex.snapshot)
    stats = get_json(account.stores.artifacts, out.statistics["uri"])
    assert set(stats["features"]) == {"age", "income", "tenure_months", "support_calls", "plan", "region"}
    income = stats["features"]["income"]
    assert income["type"] == "numeric" and 0 < income["missing_rate"] < 0.05
    assert income["min"] < income["quantiles"]["p50"] < income["max"]
    assert sum(income["histogram"]["counts"]) == 1000 - income["missing"]
    assert {t["value"] for t in stats["features"]["plan"]["top"]} == {"basic", "standard", "premium"}
    html = account.stores.artifacts.get_bytes(out.report["uri"]).decode()
    assert "tenure_months" in html and "<svg" in html


def test_given_a_first_run_when_validated_then_the_schema_is_a_candidate_until_a_run_registers(account):
    from mlops.core.registry import push_schema

    cfg = churn_config()
    ctx = account.context(cfg)
    ex = extract(ctx, source=account.upload("churn/a.csv", customers(500).to_csv(index=False).encode()))
    an = analyze(ctx, snapshot=ex.snapshot)
    out = validate_data(ctx, snapshot=ex.snapshot, statistics=an.statistics)
    assert out.passed and out.schema_inferred and out.schema_version == 0
    assert account.stores.meta.latest_schema("churn") is None  # a candidate: this run has not registered
    schema = get_json(account.stores.artifacts, out.schema_["uri"])
    assert schema["features"]["plan"]["domain"] == ["basic", "premium", "standard"]
    assert "customer_id" not in schema["features"]
    assert push_schema(account.stores, "churn", schema, "inferred", ctx.run_id)["version"] == 1  # as register does
    # a second run checks against v1 instead of inferring again
    ctx2 = account.context(cfg)
    ex2 = extract(ctx2, source=account.upload("churn/b.csv", customers(500, seed=9).to_csv(index=False).encode()))
    out2 = validate_data(ctx2, snapshot=ex2.snapshot, statistics=analyze(ctx2, snapshot=ex2.snapshot).statistics)
    assert out2.passed and not out2.schema_inferred and out2.schema_version == 1
    # and an object without one of v1's columns is refused on its own, as it is read
    ctx3 = account.context(cfg)
    broken = customers(500, seed=9).drop(columns=["age"])
    with pytest.raises(DataValidationError, match=r"churn/c\.csv"):
        extract(ctx3, source=account.upload("churn/c.csv", broken.to_csv(index=False).encode()))
    anomaly = account.stores.meta.get_run("churn", ctx3.run_id)["anomalies"][0]
    assert (anomaly["code"], anomaly["column"], anomaly["object"]) == ("MISSING_COLUMN", "age", "churn/c.csv")


@pytest.mark.parametrize("time_ordered", [False, True])
def test_given_a_snapshot_when_prepared_then_splits_are_deterministic(account, time_ordered):
    df = customers(1000, seed=3)
    df["signup_day"] = range(1000, 0, -1)
    cfg = churn_config(time_column="signup_day" if time_ordered else None)
    key = account.upload("churn/a.csv", df.to_csv(index=False).encode())
    results = []
    for _ in range(2):
        ctx = account.context(cfg)
        ex = extract(ctx, source=key)
        an = analyze(ctx, snapshot=ex.snapshot)
        vd = validate_data(ctx, snapshot=ex.snapshot, statistics=an.statistics)
        results.append(prepare(ctx, snapshot=ex.snapshot, schema=vd.usable_schema))
    a, b = results
    assert a.rows == b.rows == {"train": 700, "validation": 150, "test": 150}
    assert a.test["sha256"] == b.test["sha256"]
    store = account.stores.artifacts
    train = from_parquet_bytes(store.get_bytes(a.train["uri"]))
    test = from_parquet_bytes(store.get_bytes(a.test["uri"]))
    if time_ordered:
        assert train["signup_day"].max() < test["signup_day"].min()
    else:
        assert abs(train["churn"].mean() - test["churn"].mean()) < 0.02  # stratified


@pytest.mark.parametrize("id_column", ["customer_id", None])
def test_given_the_same_rows_reordered_and_in_two_objects_when_prepared_then_every_row_keeps_its_split(
    account, id_column
):
    # GIVEN one upload of 600 rows, and the same rows reversed in two objects (so every row sits elsewhere)
    df = customers(600, seed=5)
    cfg = churn_config(id_column=id_column, data={"prefix": "churn/", "scope": "prefix"})
    account.upload("churn/one/all.csv", df.to_csv(index=False).encode())
    shuffled = df.iloc[::-1]
    account.upload("churn/two/a.csv", shuffled.iloc[:250].to_csv(index=False).encode())
    account.upload("churn/two/b.parquet", to_parquet_bytes(shuffled.iloc[250:]))
    results = []
    for prefix in ("churn/one/", "churn/two/"):
        ctx = account.context(cfg)
        ex = extract(ctx, source={"bucket": account.resources.landing_bucket, "prefix": prefix})
        vd = validate_data(ctx, snapshot=ex.snapshot, statistics=analyze(ctx, snapshot=ex.snapshot).statistics)
        results.append(prepare(ctx, snapshot=ex.snapshot, schema=vd.usable_schema))
    # WHEN each is prepared THEN each row is in the same split, and each split file is the same, byte for byte
    one, two = results
    store = account.stores.artifacts
    for split in ("train", "validation", "test"):
        a = from_parquet_bytes(store.get_bytes(getattr(one, split)["uri"]))
        b = from_parquet_bytes(store.get_bytes(getattr(two, split)["uri"]))
        assert sorted(a["customer_id"]) == sorted(b["customer_id"]), split
        assert getattr(one, split)["sha256"] == getattr(two, split)["sha256"], split
    assert one.rows == two.rows == {"train": 420, "validation": 90, "test": 90}


def test_given_bundled_frames_then_they_are_real_data():
    assert bundled("breast-cancer").shape == (569, 31)
    assert bundled("wine")["target"].nunique() == 3
    assert bundled("diabetes")["target"].dtype.kind == "f"


def test_given_a_first_batch_with_an_all_missing_feature_then_it_fails_naming_it_and_no_schema_is_kept(account):
    cfg = churn_config()
    bad = customers(500)
    bad["income"] = None
    for attempt in range(2):  # the second all-missing upload fails the same way: nothing was kept from the first
        ctx = account.context(cfg)
        ex = extract(ctx, source=account.upload(f"churn/nan-{attempt}.csv", bad.to_csv(index=False).encode()))
        out = validate_data(ctx, snapshot=ex.snapshot, statistics=analyze(ctx, snapshot=ex.snapshot).statistics)
        assert not out.passed and out.schema_ is None
        codes = {(a["code"], a["column"]) for a in account.stores.meta.get_run("churn", ctx.run_id)["anomalies"]}
        assert ("ALL_MISSING", "income") in codes
        assert account.stores.meta.latest_schema("churn") is None
