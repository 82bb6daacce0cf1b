"""Feature store ingestion: an upload under a feature set's source prefix is checked as training data is,
appended to the offline store and materialized into the online store — once.

* **Checked** with the schema machinery (:func:`mlops.data.feature_store.ingest_problems`); a rejected object is
  quarantined under the set (``FEATURESET#<set>`` in the runs table) with its anomalies, and nothing is written.
* **Offline**: one Parquet file per event date, ``features/<set>/date=YYYY-MM-DD/<object digest>.parquet`` (the
  digest of bucket, key and ETag: a re-delivery writes the same keys).
* **Online**: the newest row per entity, written only if newer than what the entity holds (a conditional put on
  event time), expiring ``ttl_hours`` after its event time.
* **Statistics and freshness**: the newest value per entity within the TTL of the newest event date, its statistics
  (the training data's machinery) with the store's newest event time and ingestion, kept at
  ``features/<set>/_statistics/latest.json``: the monitor's baseline for online/offline skew and its freshness
  metric, and the report site's page of the set. Recomputed by each ingestion from the partitions the TTL keeps
  (two ingestions at once: the later write wins, and the next ingestion sees both).
* **Idempotent**: a receipt ``features/<set>/_ingested/<digest>.json`` is written last; an object with one is not
  read again. A retry after a partial ingestion rewrites the same files and offers the same (no longer newer) rows.
* **Registry**: the set's definition is recorded as a version (``SCHEMA#nnnn`` under ``FEATURESET#<set>``) when
  its hash is new; the receipt names the version the rows were ingested under.
"""

from __future__ import annotations

import hashlib
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlops.core.artifact_io import get_json, put_json
from mlops.core.clock import utcnow_iso
from mlops.core.config import DataFormat
from mlops.core.context import Stores
from mlops.core.errors import DataValidationError
from mlops.core.feature_sets import FeatureSetConfig, FeatureSets, registry_key, statistics_key
from mlops.core.ports import ObjectInfo, OnlineStore, OnlineValue
from mlops.data.engine import EngineLimits, connect
from mlops.data.feature_store import (
    as_model_data,
    declared_schema,
    ingest_problems,
    latest_rows,
    offline_prefix,
    partition_dates_needed,
    write_latest_snapshot,
    write_offline,
)
from mlops.data.frames import detect_format
from mlops.data.landing import load_object
from mlops.data.stats import compute_statistics

INGEST_SUFFIXES = (".csv", ".parquet", ".jsonl", ".json")
ONLINE_WRITERS = 16  # conditional puts in flight at once


@dataclass
class IngestResult:
    feature_set: str
    key: str
    status: str  # ingested | already_ingested | quarantined | ignored
    version: int | None = None
    rows: int = 0
    partitions: list[str] = field(default_factory=list)
    online_written: int = 0
    online_kept_newer: int = 0
    anomalies: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def object_digest(obj: ObjectInfo) -> str:
    """What makes an upload the same one: its bucket, key and content (ETag). A re-delivered event, or the same
    bytes uploaded again as a new version, is ingested once."""
    return hashlib.sha256(f"{obj.bucket}/{obj.key}\x1f{obj.etag}".encode()).hexdigest()[:20]


def receipt_key(fs: FeatureSetConfig, obj: ObjectInfo) -> str:
    return f"{offline_prefix(fs)}_ingested/{object_digest(obj)}.json"


def register_feature_set(stores: Stores, fs: FeatureSetConfig) -> int:
    """The registry's version of ``fs``'s definition: the latest, or a new one when its hash is new."""
    pk, digest = registry_key(fs.name), fs.definition_hash()
    for _ in range(3):  # two ingestions registering at once: the loser reads the winner's version
        latest = stores.meta.latest_schema(pk)
        if latest and latest.get("definition_hash") == digest:
            return int(latest["version"])
        version = int(latest["version"]) + 1 if latest else 1
        record = {
            "definition_hash": digest,
            "definition": fs.model_dump(mode="json"),
            "schema": declared_schema(fs),
            "at": utcnow_iso(),
        }
        try:
            stores.meta.put_schema_version(pk, version, record)
            return version
        except Exception as err:  # the conditional put lost a race (ConditionalCheckFailedException)
            if "ConditionalCheckFailed" not in type(err).__name__ + str(err):
                raise
    raise RuntimeError(f"feature set {fs.name}: could not record a registry version")


def ingest(
    stores: Stores,
    fs: FeatureSetConfig,
    obj: ObjectInfo,
    *,
    online: OnlineStore | None,
    limits: EngineLimits | None = None,
) -> IngestResult:
    """Ingest one uploaded object into ``fs``'s offline (and, for an online set, online) store, once."""
    receipt = receipt_key(fs, obj)
    if stores.artifacts.exists(receipt):
        done = get_json(stores.artifacts, stores.artifacts.uri(receipt))
        return IngestResult(fs.name, obj.key, "already_ingested", done.get("version"), int(done.get("rows", 0)))
    version = register_feature_set(stores, fs)
    limits = limits or EngineLimits.for_function()
    ingested_at = utcnow_iso()
    with tempfile.TemporaryDirectory(prefix="ingest-", dir=limits.temp_root) as tmp, connect(limits) as con:
        landed, parsed = Path(tmp) / "object", Path(tmp) / "object.parquet"
        landed.write_bytes(stores.reader.read(obj))
        try:
            load_object(con, landed, obj.key, detect_format(obj.key, DataFormat.AUTO), parsed)
            anomalies = ingest_problems(con, parsed, fs)
        except DataValidationError as err:
            anomalies = [{**a, "message": str(err)} for a in err.anomalies]
        if anomalies:
            _quarantine(stores, fs, obj, anomalies)
            return IngestResult(fs.name, obj.key, "quarantined", version, anomalies=anomalies)
        digest = object_digest(obj)
        partitions = []
        rows = 0
        for part in write_offline(con, parsed, fs, ingested_at, Path(tmp) / "offline"):
            key = f"{offline_prefix(fs)}date={part.date}/{digest}.parquet"
            stores.artifacts.put_file(key, str(part.path))
            partitions.append(key)
            rows += part.rows
        written = kept = 0
        if fs.online and online is not None:
            store = online
            values = [
                OnlineValue(row.entity, row.event_time, int(row.event_time) + fs.ttl_seconds, row.values)
                for row in latest_rows(con, fs)
            ]
            # One conditional put per entity (a batch write cannot carry a condition): in parallel, as the SDK's
            # client allows, so an upload of many entities is not one round trip after another.
            with ThreadPoolExecutor(max_workers=ONLINE_WRITERS) as pool:
                outcomes = list(pool.map(lambda value: store.put_latest(fs.name, value, ingested_at), values))
            written = sum(outcomes)
            kept = len(outcomes) - written
        refresh_statistics(stores, fs, version, limits, Path(tmp) / "statistics")
    result = IngestResult(fs.name, obj.key, "ingested", version, rows, partitions, written, kept)
    put_json(stores.artifacts, receipt, {**result.as_dict(), "etag": obj.etag, "at": ingested_at})
    return result


def refresh_statistics(
    stores: Stores, fs: FeatureSetConfig, version: int, limits: EngineLimits, tmp: Path
) -> dict[str, Any]:
    """Recompute ``fs``'s statistics and freshness (see the module) and store them; the document written. Before
    the receipt: a retry after a failure here computes them again."""
    from datetime import UTC, datetime

    keys = [k for k in stores.artifacts.keys(f"{offline_prefix(fs)}date=") if k.endswith(".parquet")]
    dates = sorted({k.split("date=", 1)[1][:10] for k in keys})
    needed = set(partition_dates_needed(dates, dates[-1], dates[-1], fs)) if dates else set()
    tmp.mkdir(parents=True, exist_ok=True)
    files = []
    for i, key in enumerate(k for k in keys if k.split("date=", 1)[1][:10] in needed):
        files.append(str(tmp / f"{i}.parquet"))
        stores.artifacts.download(stores.artifacts.uri(key), files[-1])

    def iso(epoch: float | None) -> str | None:
        return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")

    snapshot = tmp / "latest.parquet"
    with connect(limits) as con:
        fresh = write_latest_snapshot(con, files, fs, snapshot)
    doc = {
        "feature_set": fs.name,
        "version": version,
        "definition_hash": fs.definition_hash(),
        "computed_at": utcnow_iso(),
        "newest_event_time": iso(fresh.newest_event_time),
        "newest_ingested_at": iso(fresh.newest_ingested_at),
        "entities": fresh.entities,
        "rows_read": fresh.rows,
        "partitions": len(files),
        "statistics": compute_statistics([snapshot], as_model_data(fs), limits),
    }
    put_json(stores.artifacts, statistics_key(fs.name), doc)
    return doc


def _quarantine(stores: Stores, fs: FeatureSetConfig, obj: ObjectInfo, anomalies: list[dict[str, Any]]) -> None:
    codes = sorted({a["code"] for a in anomalies})
    stores.meta.quarantine(
        registry_key(fs.name),
        {
            "bucket": obj.bucket,
            "key": obj.key,
            "etag": obj.etag,
            "version_id": obj.version_id,
            "run_id": f"ingest-{object_digest(obj)}",
            "reason": ", ".join(codes),
            "anomalies": [{k: v for k, v in a.items() if k != "message"} for a in anomalies][:20],
            "at": utcnow_iso(),
        },
    )


def ingest_upload(
    stores: Stores, sets: FeatureSets, bucket: str, key: str, *, online: OnlineStore | None
) -> IngestResult:
    """The feature set an uploaded object belongs to (its source prefix in the landing bucket), ingested; status
    ``ignored`` when it belongs to none (or is not a data file)."""
    fs = sets.for_object(key) if bucket == stores.landing_bucket else None
    if fs is None or not key.lower().endswith(INGEST_SUFFIXES):
        return IngestResult(fs.name if fs else "", key, "ignored")
    return ingest(stores, fs, stores.reader.head(bucket, key), online=online)
