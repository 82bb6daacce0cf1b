"""The feature store against moto: ingestion (checked, offline Parquet, online latest, once), point-in-time
training sets (no leakage, TTL), and serving by entity."""

from __future__ import annotations

import io
from datetime import timedelta

import pandas as pd
import pytest

from mlops.core.feature_sets import registry_key
from mlops.core.ports import OnlineValue
from mlops.data.engine import EngineLimits
from mlops.steps.ingest_features import ingest_upload
from tests.feature_store import T0, csv_bytes, customers, feature_rows

pytestmark = pytest.mark.functional

LIMITS = EngineLimits(memory_mb=256, threads=1)


def _ingest(account, key: str, df: pd.DataFrame):
    account.upload(key, csv_bytes(df))
    return ingest_upload(
        account.stores, customers(), account.resources.landing_bucket, key, online=account.stores.online
    )


def _offline(account) -> pd.DataFrame:
    store = account.stores.artifacts
    parts = [k for k in store.keys("features/customers/") if k.endswith(".parquet")]
    return pd.concat([pd.read_parquet(io.BytesIO(store.get_bytes(store.uri(k)))) for k in parts])


def test_given_an_upload_when_ingested_twice_then_the_second_changes_nothing(account) -> None:
    df = feature_rows(customers_n=5)
    first = _ingest(account, "features/customers/day.csv", df)
    assert first.status == "ingested" and first.rows == 20 and first.online_written == 5 and first.version == 1
    # GIVEN the offline store: one file per event date, with entity, event_time and ingested_at
    assert sorted(p.split("/")[2] for p in first.partitions) == [
        "date=2026-01-01",
        "date=2026-01-11",
        "date=2026-01-21",
        "date=2026-01-31",
    ]
    offline = _offline(account)
    assert {"entity", "event_time", "ingested_at", "customer_id", "plan"} <= set(offline.columns) and len(offline) == 20
    before = {k: account.stores.artifacts.get_bytes(account.stores.artifacts.uri(k)) for k in first.partitions}
    online = account.stores.online.get_many("customers", ["c000", "c004"])
    # THEN the online store holds each entity's newest row, expiring TTL after its event time
    newest = T0 + timedelta(days=30)
    assert online["c000"].event_time == newest.timestamp()
    assert online["c000"].expires_at == int(newest.timestamp()) + 720 * 3600
    assert online["c000"].values["monthly_spend"] == df[df.customer_id == "c000"].monthly_spend.max()
    # WHEN the same object arrives again
    second = _ingest(account, "features/customers/day.csv", df)
    assert second.status == "already_ingested" and second.rows == 20
    after = {k: account.stores.artifacts.get_bytes(account.stores.artifacts.uri(k)) for k in first.partitions}
    assert after == before and len(_offline(account)) == 20
    assert account.stores.online.get_many("customers", ["c000"]) == {"c000": online["c000"]}
    # AND the registry holds one version of the set's definition
    latest = account.stores.meta.latest_schema(registry_key("customers"))
    assert latest["version"] == 1 and latest["definition_hash"] == customers().get("customers").definition_hash()


def test_given_an_older_row_arriving_later_then_it_never_overwrites_the_newer_online_value(account) -> None:
    df = feature_rows(customers_n=3)
    newer = df[df.as_of == df.as_of.max()]
    older = df[df.as_of == df.as_of.min()]
    assert _ingest(account, "features/customers/newer.csv", newer).online_written == 3
    late = _ingest(account, "features/customers/older.csv", older)
    assert late.status == "ingested" and late.online_written == 0 and late.online_kept_newer == 3
    value = account.stores.online.get_many("customers", ["c001"])["c001"]
    assert value.values["monthly_spend"] == newer[newer.customer_id == "c001"].monthly_spend.item()
    assert len(_offline(account)) == 6  # the offline store keeps both: history for point-in-time joins


def test_given_a_broken_upload_then_it_is_quarantined_naming_its_problems_and_nothing_is_written(account) -> None:
    df = feature_rows(customers_n=3).drop(columns=["plan"])
    df.loc[0, "as_of"] = "not a time"
    result = _ingest(account, "features/customers/bad.csv", df)
    assert result.status == "quarantined"
    assert {a["code"] for a in result.anomalies} == {"MISSING_COLUMN"} and result.anomalies[0]["column"] == "plan"
    quarantined = account.stores.meta.quarantined(registry_key("customers"))
    assert quarantined[f"{account.resources.landing_bucket}/features/customers/bad.csv"]["reason"] == "MISSING_COLUMN"
    assert not [k for k in account.stores.artifacts.keys("features/customers/") if k.endswith(".parquet")]
    assert account.stores.online.get_many("customers", ["c000"]) == {}
    # a readable time is checked too, once the columns are there
    df2 = feature_rows(customers_n=3)
    df2.loc[0, "as_of"] = "not a time"
    bad_time = _ingest(account, "features/customers/bad-time.csv", df2)
    assert [a["code"] for a in bad_time.anomalies] == ["BAD_EVENT_TIME"]


def test_given_uploads_outside_every_source_then_nothing_is_ingested(account) -> None:
    account.upload("elsewhere/x.csv", b"a,b\n1,2\n")
    landing = account.resources.landing_bucket
    assert ingest_upload(account.stores, customers(), landing, "elsewhere/x.csv", online=None).status == "ignored"
    assert (
        ingest_upload(account.stores, customers(), "other", "features/customers/x.csv", online=None).status == "ignored"
    )
    assert (
        ingest_upload(account.stores, customers(), landing, "features/customers/x.txt", online=None).status == "ignored"
    )


def test_given_the_online_store_then_batch_reads_page_by_100_and_report_only_what_exists(account) -> None:
    online = account.stores.online
    for i in range(150):
        online.put_latest("customers", OnlineValue(f"e{i}", 1.0, 10, {"x": i}), "now")
    found = online.get_many("customers", [f"e{i}" for i in range(150)] + ["missing", "e1"])
    assert len(found) == 150 and found["e149"].values == {"x": 149} and "missing" not in found


def _training_set(account, labels: pd.DataFrame, on_missing: str = "reject") -> pd.DataFrame:
    from mlops.core.clock import new_run_id
    from mlops.core.context import StepContext
    from mlops.core.runs import start_run
    from mlops.steps.extract import extract
    from tests.feature_store import churn_config

    config = churn_config(on_missing)
    run_id = new_run_id()
    start_run(account.stores, config, run_id, {"reason": "test"})
    ctx = StepContext(run_id=run_id, config=config, stores=account.stores, feature_sets=customers())
    result = extract(ctx, source=account.upload("churn/labels.csv", csv_bytes(labels)), limits=LIMITS)
    snapshot = account.stores.artifacts.get_bytes(result.snapshot["uri"])
    run = account.stores.meta.get_run("churn", run_id)
    assert run["feature_sets"] == [
        {
            "name": "customers",
            "version": 1,
            "definition_hash": customers().get("customers").definition_hash(),
            "features": ["tenure_months", "monthly_spend", "support_calls", "plan"],
        }
    ]
    return pd.read_parquet(io.BytesIO(snapshot)).set_index("customer_id").sort_index()


def test_given_labels_at_known_times_when_extracted_then_no_value_stamped_after_a_label_is_joined(account) -> None:
    features = feature_rows(customers_n=8)
    _ingest(account, "features/customers/history.csv", features)
    # GIVEN labels just before, exactly at and just after a snapshot (day 10), and between snapshots
    times = {"c000": 9.999, "c001": 10.0, "c002": 10.001, "c003": 15.0, "c004": 0.0, "c005": -1.0, "c006": 35.0}
    labels = pd.DataFrame(
        {
            "customer_id": list(times),
            "label_time": [(T0 + timedelta(days=d)).isoformat() for d in times.values()],
            "churned": [0, 1, 0, 1, 0, 1, 0],
        }
    )
    joined = _training_set(account, labels)
    # THEN every joined value is the one stamped at or before the label's time (its snapshot: spend // 1000)
    expected_snapshot = {"c000": 0, "c001": 1, "c002": 1, "c003": 1, "c004": 0, "c006": 3}
    spend = features.set_index(["customer_id", "as_of"]).monthly_spend
    for customer, step in expected_snapshot.items():
        stamped = (T0 + timedelta(days=(0, 10, 20, 30)[step])).isoformat()
        assert joined.loc[customer, "monthly_spend"] == spend[(customer, stamped)], customer
        assert joined.loc[customer, "plan"] == features.set_index(["customer_id", "as_of"]).plan[(customer, stamped)]
    # a label before any value has none; the one just after a snapshot is never used before it
    assert pd.isna(joined.loc["c005", "monthly_spend"]) and pd.isna(joined.loc["c005", "plan"])
    assert joined.loc["c000", "monthly_spend"] < 1000 <= joined.loc["c001", "monthly_spend"]
    # the label's columns stay as uploaded: the time (splits order by it), the id, the label
    assert list(joined.columns) == ["label_time", "churned", "tenure_months", "monthly_spend", "support_calls", "plan"]


def test_given_a_label_past_the_ttl_of_the_newest_value_then_its_features_are_missing(account) -> None:
    _ingest(account, "features/customers/history.csv", feature_rows(customers_n=3))
    # the newest value is stamped day 30 and lives 720 h (30 days): day 59.9 sees it, day 60.1 does not
    labels = pd.DataFrame(
        {
            "customer_id": ["c000", "c001", "c002"],
            "label_time": [(T0 + timedelta(days=d)).isoformat() for d in (59.9, 60.1, 90)],
            "churned": [0, 1, 0],
        }
    )
    joined = _training_set(account, labels)
    assert joined.loc["c000", "monthly_spend"] >= 3000
    assert joined[["tenure_months", "monthly_spend", "support_calls", "plan"]].loc[["c001", "c002"]].isna().all().all()


def test_given_labels_without_the_entity_key_then_the_object_is_set_aside_naming_it(account) -> None:
    from mlops.core.errors import DataValidationError

    _ingest(account, "features/customers/history.csv", feature_rows(customers_n=3))
    labels = pd.DataFrame({"label_time": [T0.isoformat()] * 3, "churned": [0, 1, 0]})
    with pytest.raises(DataValidationError, match=r"lack \['customer_id'\]"):
        _training_set(account, labels)


@pytest.fixture
def served_by_entity(lambda_env, monkeypatch, tmp_path):
    """A churn champion trained on labels joined point-in-time to the customers feature set, and the serve
    function's environment (its online store, the model's config and the feature sets)."""
    import yaml

    from mlops.core.constants import ENV_CONFIG_URI, ENV_FEATURE_SETS_URI
    from mlops.local.lambda_runtime import reset_caches
    from mlops.serving import api
    from tests.chain import run_chain
    from tests.feature_store import CUSTOMERS, churn_config, label_rows

    account = lambda_env
    _ingest(account, "features/customers/history.csv", feature_rows(customers_n=80))
    config = churn_config("reject")
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_defaults=True)))
    monkeypatch.setenv(ENV_CONFIG_URI, str(path))
    monkeypatch.setenv(ENV_FEATURE_SETS_URI, str(CUSTOMERS))
    monkeypatch.setenv("MLOPS_MODEL_CACHE_SECONDS", "0")
    reset_caches()
    from mlops.core.clock import new_run_id
    from mlops.core.context import StepContext
    from mlops.core.runs import start_run

    run_id = new_run_id()
    start_run(account.stores, config, run_id, {"reason": "test"})
    ctx = StepContext(run_id=run_id, config=config, stores=account.stores, feature_sets=customers())
    labels = pd.concat([label_rows(80, day=15), label_rows(80, day=25)])
    out = run_chain(ctx, account.upload("churn/labels.csv", csv_bytes(labels)))
    assert out["status"] == "SUCCEEDED", out
    api.model_cache.cache_clear()
    yield account
    api.model_cache.cache_clear()


def _call(records: list[dict]) -> tuple[int, dict]:
    import json

    from mlops.local.apigw import call

    status, _, body = call("POST", "/models/churn/predict", json.dumps({"records": records}))
    return status, json.loads(body)


def test_given_a_model_trained_on_a_feature_set_when_served_by_entity_then_it_answers_as_for_the_features_sent(
    served_by_entity, monkeypatch
) -> None:
    import json

    from mlops.serving import api

    account = served_by_entity
    version = account.stores.meta.get_model_version("churn", 1)
    assert [f["name"] for f in version["lineage"]["feature_sets"]] == ["customers"]  # lineage: what it trained on
    # the online values (stamped day 30) are live until day 60: serve as of day 40
    monkeypatch.setattr(api, "utcnow", lambda: T0 + timedelta(days=40))
    status, by_entity = _call([{"customer_id": "c001"}, {"customer_id": "c002"}])
    assert status == 200, by_entity
    online = account.stores.online.get_many("customers", ["c001", "c002"])
    full = [{"customer_id": e, **online[e].values} for e in ("c001", "c002")]
    status, sent = _call(full)
    assert status == 200, sent
    assert [p["probabilities"] for p in by_entity["predictions"]] == [p["probabilities"] for p in sent["predictions"]]
    assert [p["id"] for p in by_entity["predictions"]] == ["c001", "c002"]
    assert by_entity["lookups"][0]["customers"] == {
        "entity": "c001",
        "status": "found",
        "event_time": online["c001"].event_time,
    }
    assert sent["lookups"] == [{}, {}]  # sent in full: nothing looked up
    # the OpenAPI document says so: the key documented, the looked-up features not required
    from mlops.local.apigw import call

    records = json.loads(call("GET", "/openapi.json", "")[2])["components"]["schemas"]["PredictRequest-churn"]
    item = records["properties"]["records"]["items"]
    assert item["required"] == [] and "looked up" in item["properties"]["customer_id"]["description"]
    # an unknown entity is answered as configured (reject): a 404 naming it
    status, body = _call([{"customer_id": "c001"}, {"customer_id": "nobody"}])
    assert status == 404 and "entity 'nobody'" in body["message"] and "none was ingested" in body["message"]
    # and an expired one (day 61: past the 720 h TTL of day 30's values) too
    monkeypatch.setattr(api, "utcnow", lambda: T0 + timedelta(days=61))
    status, body = _call([{"customer_id": "c001"}])
    assert status == 404 and "older than the feature set's TTL" in body["message"]


def test_given_on_missing_default_then_an_unknown_entity_is_scored_with_training_defaults_and_the_answer_says_so(
    served_by_entity, monkeypatch, tmp_path
) -> None:
    import yaml

    from mlops.core.constants import ENV_CONFIG_URI
    from mlops.local.lambda_runtime import reset_caches
    from mlops.serving import api
    from tests.feature_store import churn_config

    path = tmp_path / "churn-default.yaml"
    path.write_text(yaml.safe_dump(churn_config("default").model_dump(mode="json", exclude_defaults=True)))
    monkeypatch.setenv(ENV_CONFIG_URI, str(path))
    reset_caches()
    api.model_cache.cache_clear()
    status, body = _call([{"customer_id": "nobody"}])
    assert status == 200, body
    assert body["lookups"] == [{"customers": {"entity": "nobody", "status": "missing"}}]
    assert "no live features for entity 'nobody'" in body["warnings"][0]
    nulls = {"customer_id": "nobody", "tenure_months": None, "monthly_spend": None, "support_calls": None, "plan": None}
    assert _call([nulls])[1]["predictions"][0]["probabilities"] == body["predictions"][0]["probabilities"]


def test_given_the_s3_event_when_the_ingestion_handler_is_invoked_then_the_upload_is_ingested(
    lambda_env, monkeypatch
) -> None:
    from mlops.core.constants import ENV_FEATURE_SETS_URI
    from mlops.local.lambda_runtime import invoke, reset_caches
    from tests.conftest import load_event
    from tests.feature_store import CUSTOMERS

    monkeypatch.setenv(ENV_FEATURE_SETS_URI, str(CUSTOMERS))
    reset_caches()
    event = load_event("s3_object_created")
    event["detail"]["object"]["key"] = "features/customers/day-1.csv"
    lambda_env.upload("features/customers/day-1.csv", csv_bytes(feature_rows(customers_n=2)))
    out = invoke("ingest_features", event)
    assert out.function_error is None, out.payload
    assert out.payload["status"] == "ingested" and out.payload["rows"] == 8 and out.payload["online_written"] == 2
    event["detail"]["object"]["key"] = "breast-cancer/x.csv"
    assert invoke("ingest_features", event).payload["status"] == "ignored"


def test_given_labelled_rows_when_joined_then_they_keep_their_upload_order(account) -> None:
    _ingest(account, "features/customers/history.csv", feature_rows(customers_n=30))
    labels = pd.DataFrame(
        {
            "customer_id": [f"c{i:03d}" for i in reversed(range(30))],
            "label_time": [(T0 + timedelta(days=12 + i % 9)).isoformat() for i in range(30)],
            "churned": [i % 2 for i in range(30)],
        }
    )
    joined = _training_set(account, labels)  # (indexed by id there: read the snapshot as written)
    store = account.stores.artifacts
    snapshot_key = next(k for k in store.keys("runs/") if k.endswith("extract/snapshot.parquet"))
    snapshot = pd.read_parquet(io.BytesIO(store.get_bytes(store.uri(snapshot_key))))
    assert list(snapshot.customer_id) == list(labels.customer_id) and len(joined) == 30


def test_given_an_ingestion_then_the_sets_statistics_and_freshness_are_kept_for_the_monitor_and_the_site(
    account,
) -> None:
    from mlops.core.artifact_io import get_json
    from mlops.core.feature_sets import statistics_key

    df = feature_rows(customers_n=6)
    _ingest(account, "features/customers/history.csv", df)
    store = account.stores.artifacts
    doc = get_json(store, store.uri(statistics_key("customers")))
    # THEN freshness: the newest event time (day 30) and this ingestion; the statistics: each entity's newest row
    assert doc["newest_event_time"] == "2026-01-31T00:00:00Z" and doc["newest_ingested_at"]
    assert doc["entities"] == 6 and doc["rows_read"] == 24 and doc["version"] == 1
    latest = df[df.as_of == df.as_of.max()]
    spend = doc["statistics"]["features"]["monthly_spend"]
    assert spend["count"] == 6 and spend["mean"] == pytest.approx(latest.monthly_spend.mean())
    assert doc["statistics"]["features"]["plan"]["type"] == "categorical"


def _capture_to_s3(account, out: str) -> int:
    """What the serve function printed (capture lines) shipped to S3 as the capture function would."""
    import json

    from mlops.monitoring.capture import flatten, partition, to_jsonl

    rows = [r for line in out.splitlines() if '"mlops":"capture"' in line for r in flatten(json.loads(line))]
    key = f"{partition('capture', 'churn', rows[0]['time'])}00-test.jsonl"
    account.stores.artifacts.put_bytes(key, to_jsonl(rows))
    return len(rows)


def test_given_traffic_served_by_entity_when_the_monitor_runs_then_it_publishes_each_sets_age_and_skew(
    served_by_entity, monkeypatch, capsys
) -> None:
    from mlops.core.ports import OnlineValue
    from mlops.monitoring.monitor import run_monitor
    from mlops.serving import api
    from tests.feature_store import churn_config

    account = served_by_entity
    served_at = T0 + timedelta(days=40)
    monkeypatch.setattr(api, "utcnow", lambda: served_at)
    entities = [{"customer_id": f"c{i:03d}"} for i in range(80)]
    capsys.readouterr()
    for _ in range(2):  # 160 records by entity: past monitoring.min_samples (100)
        assert _call(entities)[0] == 200
    assert _call([{"customer_id": "c001", **account.stores.online.get_many("customers", ["c001"])["c001"].values}])[0]
    assert _capture_to_s3(account, capsys.readouterr().out) == 161

    class Recorder:
        def __init__(self) -> None:
            self.by_set: dict[str, dict[str, float]] = {}

        def publish(self, values, dimensions, when) -> None:
            if "FeatureSet" in dimensions[0]:
                self.by_set[dimensions[0]["FeatureSet"]] = values

    # WHEN the monitor judges the hour after: the online store serves what the offline store holds
    metrics = Recorder()
    end = served_at + timedelta(hours=1)
    summary = run_monitor(account.stores, churn_config(), metrics, end, customers())
    (entry,) = summary["feature_sets"]
    # THEN the age of the newest value (day 30) at the window's end, and no skew (the record sent in full is not
    # a lookup: 160 looked up)
    assert metrics.by_set["customers"]["FeatureAgeHours"] == pytest.approx(10 * 24 + 1)
    assert entry["looked_up"] == 160 and entry["skew"]["judged"] and entry["skew"]["skewed"] == []
    assert metrics.by_set["customers"]["FeatureSkewScore"] < 0.05
    assert entry["stale"] is True and entry["max_staleness_hours"] == 24

    # GIVEN the online store drifts from the offline store (a write that bypassed ingestion: spend times 10)
    for entity, value in account.stores.online.get_many("customers", [e["customer_id"] for e in entities]).items():
        skewed = {**value.values, "monthly_spend": value.values["monthly_spend"] * 10}
        account.stores.online.put_latest(
            "customers", OnlineValue(entity, value.event_time + 1, value.expires_at, skewed), "x"
        )
    capsys.readouterr()
    monkeypatch.setattr(api, "utcnow", lambda: served_at + timedelta(days=1))
    for _ in range(2):
        assert _call(entities)[0] == 200
    _capture_to_s3(account, capsys.readouterr().out)
    summary = run_monitor(account.stores, churn_config(), metrics, end + timedelta(days=1), customers())
    (entry,) = summary["feature_sets"]
    # THEN the skew is measured as drift is (PSI over the offline store's bins) and its score is past 1
    assert (
        entry["skew"]["skewed"] == ["monthly_spend"] and entry["skew"]["features"]["monthly_spend"]["measure"] == "psi"
    )
    assert metrics.by_set["customers"]["FeatureSkewScore"] > 1


def test_given_a_model_on_a_feature_set_then_its_site_has_the_sets_page_linked_from_the_index_and_the_home(
    served_by_entity, monkeypatch, capsys, tmp_path
) -> None:
    import re
    from posixpath import dirname, normpath
    from posixpath import join as urljoin

    from mlops.monitoring.monitor import run_monitor
    from mlops.reports import site
    from mlops.serving import api
    from tests.feature_store import churn_config, churn_models
    from tests.functional.test_site import links

    account = served_by_entity
    served_at = T0 + timedelta(days=40)
    monkeypatch.setattr(api, "utcnow", lambda: served_at)
    capsys.readouterr()
    for _ in range(2):
        assert _call([{"customer_id": f"c{i:03d}"} for i in range(80)])[0] == 200
    _capture_to_s3(account, capsys.readouterr().out)
    run_monitor(account.stores, churn_config(), _NoMetrics(), served_at + timedelta(hours=1), customers())
    monkeypatch.setattr(site, "utcnow", lambda: T0 + timedelta(days=31))  # a day after the newest value

    # WHEN the model's site is built with the deployment's models
    pages = site.build(account.stores, "churn", models=churn_models())
    page = pages["feature-sets/customers.html"]
    assert 'href="feature-sets/customers.html"' in pages["index.html"]
    for path, html in pages.items():
        for href in links(html):
            assert normpath(urljoin(dirname(path), href)) in pages, f"{path}: broken link {href}"
    # THEN freshness: the newest event time, its age (24 h: not past max_staleness_hours 24), the newest ingestion
    assert "event time 2026-01-31 00:00:00" in page and '<span class="ok">24 h old</span>' in page
    assert re.search(r"newest ingestion</div><div class=\"v\">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", page)
    # its registry version, the model and its version trained on it, the last skew judged, its statistics
    assert re.search(r"<td class=\"l\">v1</td><td class=\"l\"><code>[0-9a-f]{16}</code>", page)
    assert '<a href="../versions/v1.html">v1</a> <span class="muted">(set v1)</span>' in page
    assert "160 record(s) served by entity" in page and page.count(">consistent</td>") == 4
    stats = page[page.index("Statistics of the offline store") :]
    assert "Each entity's newest value (80 rows)" in stats and all(
        f'<td class="l">{f}</td>' in stats for f in ("tenure_months", "monthly_spend", "support_calls", "plan")
    )
    # AND the home page of the sites lists the set, linked to its page in the model's site
    home = site.write_sites(account.stores, ["churn"], tmp_path, catalog=churn_models())
    assert 'href="churn/feature-sets/customers.html"' in home.read_text()
    assert (tmp_path / "churn" / "feature-sets" / "customers.html").exists()
    # without the deployment's models (a tool that has none), no such page
    assert not [p for p in site.build(account.stores, "churn") if p.startswith("feature-sets/")]


class _NoMetrics:
    def publish(self, values, dimensions, when) -> None:
        pass
