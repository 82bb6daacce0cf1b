"""The feature store's SQL: a feature set's upload checked with the schema machinery the training data goes
through, cut into the offline store's Parquet partitions, reduced to the latest row per entity for the online
store, and joined point-in-time (DuckDB's ``ASOF JOIN``) onto a model's labelled rows.

Offline rows carry ``entity`` (the key values as text, :meth:`FeatureSetConfig.entity_id`'s rule), the key
columns, ``event_time`` (TIMESTAMP, UTC), the features and ``ingested_at``. Times leave DuckDB as epoch seconds:
a TIMESTAMPTZ value fetched into Python would need pytz, which no bundle carries."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.core.config import FeatureSetUse, FeatureType, ProjectConfig, parse_config
from mlops.core.constants import FEATURES_PREFIX
from mlops.core.feature_sets import ENTITY_SEPARATOR, FeatureSetConfig, KeyType
from mlops.data.engine import parquet_source, quote
from mlops.data.schema import Anomaly, anomaly, object_problems
from mlops.data.table import SqlTable

ENTITY, EVENT_TIME, INGESTED_AT = "entity", "event_time", "ingested_at"
_NO_TARGET = "__mlops_no_target__"  # a feature set has no label: the schema checks see one that is never there
_ROW = "__mlops_label_row"  # a labelled row's place in its upload, while it is joined


def offline_prefix(fs: FeatureSetConfig) -> str:
    return f"{FEATURES_PREFIX}{fs.name}/"


def as_model_data(fs: FeatureSetConfig) -> ProjectConfig:
    """The set seen as a model's data, so the schema and anomaly checks training data goes through apply to its
    uploads as they are: its features typed as declared, its keys and event time not features."""
    overrides: dict[str, Any] = {name: {"type": kind.value} for name, kind in fs.features.items()}
    overrides.update({k: {"drop": True} for k in fs.keys[1:]})
    return parse_config(
        {
            "name": fs.name,
            "data": {"prefix": fs.source},
            "target": _NO_TARGET,
            "id_column": fs.keys[0],
            "time_column": fs.event_time,
            "features": {"overrides": overrides},
            "training": {"candidates": [{"family": "linear"}]},
        },
        f"feature set {fs.name}",
    )


def declared_schema(fs: FeatureSetConfig) -> dict[str, Any]:
    """The set's schema: its features as declared (what each upload is checked against)."""
    return {"features": {name: {"type": kind.value} for name, kind in fs.features.items()}}


def _timestamp(expr: str) -> str:
    """A column as a UTC TIMESTAMP: ISO text with or without an offset (naive: UTC), or a timestamp."""
    return f"make_timestamp(epoch_us(TRY_CAST({expr} AS TIMESTAMPTZ)))"


def entity_sql(fs: FeatureSetConfig, alias: str = "") -> str:
    """The SQL of :meth:`FeatureSetConfig.entity_id`: the key values as text, an integer key without a '.0'."""
    parts = []
    for key in fs.entity:
        col = f"{alias}{quote(key.name)}"
        parts.append(
            f"CAST(CAST({col} AS BIGINT) AS VARCHAR)" if key.type is KeyType.INTEGER else f"CAST({col} AS VARCHAR)"
        )
    return parts[0] if len(parts) == 1 else f"concat_ws('{ENTITY_SEPARATOR}', {', '.join(parts)})"


def ingest_problems(con: Any, path: Path, fs: FeatureSetConfig) -> list[Anomaly]:
    """Why one upload cannot be ingested: a feature missing or holding text where numbers are declared (the
    training data's object checks), a key or the event time missing, a key or time without a value, a time that
    is not one, fewer rows than ``min_rows``."""
    table = SqlTable(con, [str(path)])
    out = [a for a in object_problems(table, declared_schema(fs), as_model_data(fs)) if a["column"] != _NO_TARGET]
    columns = set(table.columns)
    for col in [*fs.keys, fs.event_time]:
        if col not in columns:
            out.append(anomaly("MISSING_COLUMN", "error", col, "the feature set's key or event time column is missing"))
    if out:
        return out
    src = parquet_source([str(path)])
    t = quote(fs.event_time)
    rows, no_key, bad_time = con.execute(
        f"SELECT count(*), count(*) FILTER ({' OR '.join(f'{quote(k)} IS NULL' for k in fs.keys)}), "
        f"count(*) FILTER ({t} IS NULL OR TRY_CAST({t} AS TIMESTAMPTZ) IS NULL) FROM {src}"
    ).fetchone()
    if no_key:
        out.append(anomaly("MISSING_KEY", "error", ",".join(fs.keys), f"{no_key} row(s) have no entity key", no_key))
    if bad_time:
        out.append(
            anomaly(
                "BAD_EVENT_TIME", "error", fs.event_time, f"{bad_time} row(s) have no readable event time", bad_time
            )
        )
    if rows < fs.min_rows:
        out.append(anomaly("LOW_ROW_COUNT", "error", "", f"{rows} row(s); the feature set needs {fs.min_rows}", rows))
    return out


def _feature_sql(fs: FeatureSetConfig) -> str:
    cols = []
    for name, kind in fs.features.items():
        col = quote(name)
        cols.append(
            f"TRY_CAST({col} AS DOUBLE) AS {col}" if kind is FeatureType.NUMERIC else f"CAST({col} AS VARCHAR) AS {col}"
        )
    return ", ".join(cols)


@dataclass(frozen=True)
class Partition:
    date: str  # YYYY-MM-DD of the rows' event time (UTC)
    path: Path
    rows: int


def write_offline(con: Any, path: Path, fs: FeatureSetConfig, ingested_at: str, out: Path) -> list[Partition]:
    """The upload at ``path`` as the offline store's rows, one Parquet file per event date under ``out``."""
    keys = ", ".join(quote(k) for k in fs.keys)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE offline AS SELECT {entity_sql(fs)} AS {ENTITY}, {keys}, "
        f"{_timestamp(quote(fs.event_time))} AS {EVENT_TIME}, {_feature_sql(fs)}, "
        f"{_timestamp(repr(ingested_at))} AS {INGESTED_AT} FROM {parquet_source([str(path)])}"
    )
    partitions = []
    dates = con.execute(f"SELECT DISTINCT strftime({EVENT_TIME}, '%Y-%m-%d') AS d FROM offline ORDER BY d").fetchall()
    out.mkdir(parents=True, exist_ok=True)
    for (day,) in dates:
        target = out / f"{day}.parquet"
        con.execute(
            f"COPY (SELECT * FROM offline WHERE strftime({EVENT_TIME}, '%Y-%m-%d') = '{day}' "
            f"ORDER BY {ENTITY}, {EVENT_TIME}) TO '{target}' (FORMAT parquet)"
        )
        (rows,) = con.execute(f"SELECT count(*) FROM {parquet_source([str(target)])}").fetchone()
        partitions.append(Partition(day, target, int(rows)))
    return partitions


@dataclass(frozen=True)
class Latest:
    """An entity's newest row in one upload: what the online store is offered."""

    entity: str
    event_time: float  # epoch seconds
    values: dict[str, Any]


def _plain(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def latest_rows(con: Any, fs: FeatureSetConfig) -> list[Latest]:
    """The newest row per entity of the upload :func:`write_offline` just read (table ``offline``)."""
    names = list(fs.features)
    cols = ", ".join(quote(n) for n in names)
    rows = con.execute(
        f"SELECT {ENTITY}, epoch({EVENT_TIME}), {cols} FROM offline "
        f"QUALIFY row_number() OVER (PARTITION BY {ENTITY} ORDER BY {EVENT_TIME} DESC) = 1 ORDER BY {ENTITY}"
    ).fetchall()
    return [Latest(r[0], float(r[1]), {n: _plain(v) for n, v in zip(names, r[2:], strict=True)}) for r in rows]


@dataclass(frozen=True)
class Freshness:
    """How new the offline store's values are: its newest event time and newest ingestion (epoch seconds, None
    when it holds nothing), the entities it holds and the rows read to find their latest values."""

    newest_event_time: float | None
    newest_ingested_at: float | None
    entities: int
    rows: int


def write_latest_snapshot(con: Any, files: list[str], fs: FeatureSetConfig, out: Path) -> Freshness:
    """The newest row per entity of the offline ``files`` (the latest ingestion of a row stamped twice), its
    features only, written to ``out``: the values the online store materialized (its TTL aside), so their
    statistics are what serving by entity should look like."""
    feats = ", ".join(quote(n) for n in fs.features)
    src = f"read_parquet([{', '.join(repr(f) for f in files)}], union_by_name = true)"
    con.execute(
        f"COPY (SELECT {feats} FROM {src} QUALIFY row_number() OVER (PARTITION BY {ENTITY} "
        f"ORDER BY {EVENT_TIME} DESC, {INGESTED_AT} DESC) = 1) TO '{out}' (FORMAT parquet)"
    )
    newest, ingested, entities, rows = con.execute(
        f"SELECT epoch(max({EVENT_TIME})), epoch(max({INGESTED_AT})), count(DISTINCT {ENTITY}), count(*) FROM {src}"
    ).fetchone()
    return Freshness(
        None if newest is None else float(newest),
        None if ingested is None else float(ingested),
        int(entities),
        int(rows),
    )


def partition_dates_needed(dates: list[str], first_label: str, last_label: str, fs: FeatureSetConfig) -> list[str]:
    """The offline partitions a point-in-time join over labels from ``first_label`` to ``last_label`` (dates,
    YYYY-MM-DD) can use: none after the last label's date, none older than the TTL before the first."""
    from datetime import date, timedelta

    earliest = (date.fromisoformat(first_label) - timedelta(hours=fs.ttl_hours) - timedelta(days=1)).isoformat()
    return [d for d in dates if earliest <= d <= last_label]


def label_dates(con: Any, path: Path, time_column: str) -> tuple[str, str] | None:
    """The first and last date (UTC) of the labels' event times in ``path`` (None: no readable time)."""
    t = _timestamp(quote(time_column))
    first, last = con.execute(
        f"SELECT strftime(min({t}), '%Y-%m-%d'), strftime(max({t}), '%Y-%m-%d') FROM {parquet_source([str(path)])}"
    ).fetchone()
    return None if first is None else (first, last)


def join_point_in_time(
    con: Any,
    labels: Path,
    sets: list[tuple[FeatureSetConfig, FeatureSetUse, list[str]]],
    config: ProjectConfig,
    out: Path,
) -> int:
    """Each labelled row of ``labels`` with each feature set's latest values stamped **at or before** the label's
    time (``config.time_column``) and within the set's TTL (older: missing), from the offline files listed for
    each set: DuckDB's ``ASOF LEFT JOIN`` on the entity. A value stamped after the label's time is never joined.
    Key columns other than the model's ``id_column`` leave the table (they name an entity, they are not features);
    the label's time stays (the splits order by it). Written to ``out``; the rows (as many as came in)."""
    assert config.time_column is not None  # checked at synthesis (check_uses)
    label_time = _timestamp(quote(config.time_column))
    select = ["l.*"]
    joins = []
    dropped: set[str] = set()
    for i, (fs, use, files) in enumerate(sets):
        alias = f"f{i}"
        names = list(use.features or fs.features)
        feats = ", ".join(quote(n) for n in names)
        if files:
            source = (
                f"(SELECT {ENTITY}, {EVENT_TIME}, {feats} FROM read_parquet([{', '.join(repr(f) for f in files)}], "
                f"union_by_name = true) QUALIFY row_number() OVER (PARTITION BY {ENTITY}, {EVENT_TIME} "
                f"ORDER BY {INGESTED_AT} DESC) = 1)"
            )
        else:  # nothing ingested yet: every value is missing
            empty = ", ".join(f"NULL::{_sql_type(fs.features[n])} AS {quote(n)}" for n in names)
            source = f"(SELECT NULL::VARCHAR AS {ENTITY}, NULL::TIMESTAMP AS {EVENT_TIME}, {empty} WHERE false)"
        joins.append(
            f"ASOF LEFT JOIN {source} {alias} ON {alias}.{ENTITY} = {entity_sql(fs, 'l.')} "
            f"AND {alias}.{EVENT_TIME} <= {label_time}"
        )
        fresh = f"{alias}.{EVENT_TIME} >= {label_time} - INTERVAL '{fs.ttl_seconds} seconds'"
        select += [f"CASE WHEN {fresh} THEN {alias}.{quote(n)} END AS {quote(n)}" for n in names]
        dropped |= {k for k in fs.keys if k != config.id_column}
    # The label's columns come first, as uploaded (a feature the upload also carries is the set's: excluded here).
    taken = {n for fs, use, _ in sets for n in (use.features or fs.features)}
    (columns,) = [[r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {parquet_source([str(labels)])}").fetchall()]]
    kept = [c for c in columns if c not in dropped and c not in taken]
    select[0] = ", ".join(f"l.{quote(c)}" for c in kept)
    # The rows leave in the order they were uploaded (a join's output order is DuckDB's own).
    numbered = f"(SELECT *, row_number() OVER () AS {_ROW} FROM {parquet_source([str(labels)])})"
    con.execute(
        f"COPY (SELECT {', '.join(select)} FROM {numbered} l {' '.join(joins)} ORDER BY l.{_ROW}) "
        f"TO '{out}' (FORMAT parquet)"
    )
    (rows,) = con.execute(f"SELECT count(*) FROM {parquet_source([str(out)])}").fetchone()
    return int(rows)


def _sql_type(kind: FeatureType) -> str:
    return "DOUBLE" if kind is FeatureType.NUMERIC else "VARCHAR"
