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
    assert (
        ingest_upload(account.stores, customers(), account.resources.landing_bucket, "elsewhere/x.csv", online=None)
        is None
    )
    assert ingest_upload(account.stores, customers(), "other-bucket", "features/customers/x.csv", online=None) is None


def test_given_the_online_store_then_batch_reads_page_by_100_and_report_only_what_exists(account) -> None:
    online = account.stores.online
    for i in range(150):
        online.put_latest("customers", OnlineValue(f"e{i}", 1.0, 10, {"x": i}), "now")
    found = online.get_many("customers", [f"e{i}" for i in range(150)] + ["missing", "e1"])
    assert len(found) == 150 and found["e149"].values == {"x": 149} and "missing" not in found
