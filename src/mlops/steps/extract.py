"""A1: read CSV / Parquet / JSON Lines from S3 into one snapshot, with a manifest for lineage."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlops.core.artifact_io import get_json, put_json
from mlops.core.clock import utcnow_iso
from mlops.core.config import DataFormat
from mlops.core.context import StepContext
from mlops.core.errors import DataTooLargeError, DataValidationError, SourceObjectMissingError
from mlops.core.feature_sets import FeatureSetConfig, registry_key
from mlops.core.ports import ObjectInfo
from mlops.core.registry import champion_statistics
from mlops.core.results import ExtractResult, ShardsResult
from mlops.core.runs import MAX_ANOMALIES_IN_RECORD, pipeline_step
from mlops.data.engine import EngineLimits, connect
from mlops.data.feature_store import join_point_in_time, label_dates, offline_prefix, partition_dates_needed
from mlops.data.frames import detect_format, normalize
from mlops.data.landing import load_object, write_frame, write_shards, write_snapshot
from mlops.data.partials import StatisticsPlan
from mlops.data.schema import Data, consensus_problems, object_problems
from mlops.data.table import SqlTable


def resolve_objects(ctx: StepContext, source: dict[str, Any], gone: list[dict[str, Any]]) -> list[ObjectInfo]:
    """The objects a run reads: the given keys, or every data file under a prefix that is not quarantined
    (an object a failed run rejected, unless it has been replaced since: its ETag differs). A given key S3 no
    longer has is added to ``gone``; if every one is gone, the run fails naming them."""
    cfg = ctx.config.data
    bucket = source.get("bucket") or cfg.bucket or ctx.stores.landing_bucket
    if not bucket:
        raise ValueError("no bucket: set data.bucket or the landing bucket (MLOPS_LANDING_BUCKET)")
    reader = ctx.stores.reader
    if source.get("keys"):
        objs = []
        for key in source["keys"]:
            try:
                objs.append(reader.head(bucket, key))
            except SourceObjectMissingError as err:  # deleted since it landed: named by extract, the rest read
                gone.append({"bucket": bucket, "key": key, "message": str(err)})
        if not objs:
            raise SourceObjectMissingError("; ".join(g["message"] for g in gone))
    else:
        prefix = source.get("prefix", cfg.prefix)
        listed = [o for o in reader.list_objects(bucket, prefix) if o.key.lower().endswith(cfg.suffixes)]
        quarantined = ctx.stores.meta.quarantined(ctx.model)
        skipped = [
            {"key": o.key, "reason": q.get("reason"), "rejected_by": q.get("run_id")}
            for o in listed
            if (q := quarantined.get(f"{o.bucket}/{o.key}")) and q.get("etag") == o.etag
        ]
        objs = [o for o in listed if o.key not in {s["key"] for s in skipped}]
        if skipped:
            ctx.stores.meta.update_run(ctx.model, ctx.run_id, {"skipped": skipped})
        if listed and not objs:
            raise DataValidationError(
                f"every data file under s3://{bucket}/{prefix} is quarantined",
                [
                    {
                        "code": "NO_DATA",
                        "severity": "error",
                        "column": "",
                        "description": f"all {len(listed)} file(s) were rejected by earlier runs (see `skipped`); "
                        "upload corrected data",
                    }
                ],
            )
    if not objs:
        where = source.get("keys") or source.get("prefix", cfg.prefix)
        raise DataValidationError(
            f"no data files found at s3://{bucket}/{where}",
            [{"code": "NO_DATA", "severity": "error", "column": "", "description": f"nothing at {where}"}],
        )
    return objs


def _labelled_traffic(ctx: StepContext, window: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """Served records that received labels in ``window`` (an alarm-started run with
    ``monitoring.train_on_feedback``), as one more batch, recorded in the manifest."""
    from mlops.core.constants import CAPTURES_PREFIX
    from mlops.monitoring.monitor import labelled_frame, parse_iso

    df = labelled_frame(ctx.stores, ctx.config, parse_iso(window["since"]), parse_iso(window["until"]))
    if df is None:
        return None
    bucket = ctx.stores.artifacts.uri("").removeprefix("s3://").rstrip("/")
    entry = {
        "bucket": bucket,
        "key": f"{CAPTURES_PREFIX}{ctx.model}/",
        "rows": len(df),
        "format": "labelled-captures",
        "since": window["since"],
        "until": window["until"],
    }
    return df, entry


def stored_schema(ctx: StepContext) -> dict[str, Any] | None:
    """The model's reference schema (the latest stored version), or None before a run has registered one."""
    current = ctx.stores.meta.latest_schema(ctx.model)
    return get_json(ctx.stores.artifacts, current["schema"]["uri"]) if current else None


# What extract writes under /tmp for each byte it reads: the object on its way in, and the snapshot (no larger than
# the objects it is made of) on its way out.
DISK_PER_INPUT_BYTE = 2


def size_guard(objs: list[ObjectInfo], ctx: StepContext, limits: EngineLimits) -> int:
    """The objects' total size, checked before any is read against ``data.max_bytes`` and against what the step
    can hold on its ephemeral storage; over either, :class:`DataTooLargeError` names the limit, the size and the
    setting that lifts it."""
    cfg = ctx.config.data
    total = sum(o.size for o in objs)
    if total > cfg.max_bytes:
        raise DataTooLargeError(
            f"{len(objs)} object(s) hold {total:,} bytes, above data.max_bytes={cfg.max_bytes:,}; "
            "raise the limit (and the extract function's memory) or narrow data.prefix"
        )
    need, room = total * DISK_PER_INPUT_BYTE, limits.disk_bytes()
    if need > room:
        raise DataTooLargeError(
            f"{len(objs)} object(s) hold {total:,} bytes: extract needs about {need:,} bytes of ephemeral storage "
            f"under {limits.temp_root} (the objects read and the snapshot written) and has {room:,}; give the extract "
            "function more ephemeral storage (Lambda's EphemeralStorage, up to 10,240 MB) or narrow data.prefix"
        )
    return total


def _problems(key: str, found: list[dict[str, Any]]) -> str:
    if found[0].get("message"):  # it could not be read: what the reader said
        return str(found[0]["message"])
    return f"{key}: " + "; ".join(f"{a['code']} {a['column']}: {a['description']}".strip() for a in found)


def _set_aside_message(bad: dict[str, list[dict[str, Any]]], total: int, share: float) -> str:
    if total == 1:
        return _problems(*next(iter(bad.items())))
    named = "; ".join(f"{key} ({', '.join(sorted({a['code'] for a in found}))})" for key, found in bad.items())
    why = "none is usable" if len(bad) == total else f"above validation.max_rejected_object_share={share:g}"
    return f"{len(bad)} of {total} objects are unusable ({why}): {named}"


@dataclass(frozen=True)
class Part:
    """One usable object, parsed into a Parquet file on local disk."""

    obj: ObjectInfo
    path: Path
    rows: int
    fmt: DataFormat


def _read_each(
    ctx: StepContext, con: Any, tmp: Path, objs: list[ObjectInfo], gone: list[dict[str, Any]]
) -> tuple[list[Part], dict[str, list[dict[str, Any]]]]:
    """Each object read and checked on its own, one at a time: the usable ones as Parquet files under ``tmp``, the
    others by key with their anomalies (those S3 no longer has are added to ``gone``)."""
    cfg = ctx.config.data
    schema = stored_schema(ctx)
    read: list[Part] = []
    bad: dict[str, list[dict[str, Any]]] = {}
    offline: dict[str, dict[str, str]] = {}  # each feature set's offline files, downloaded once for every object
    for i, obj in enumerate(objs):
        fmt = detect_format(obj.key, cfg.format)
        landed, parsed = tmp / f"object-{i}", tmp / f"part-{i}.parquet"
        try:
            landed.write_bytes(ctx.stores.reader.read(obj))
        except SourceObjectMissingError as err:
            gone.append({"bucket": obj.bucket, "key": obj.key, "message": str(err)})
            continue
        try:
            rows = load_object(con, landed, obj.key, fmt, parsed)
            if ctx.config.feature_sets:  # the labelled rows, with their features as of each label's time
                rows = _join_features(ctx, con, tmp, parsed, offline)
        except DataValidationError as err:
            bad[obj.key] = [{**a, "object": obj.key, "message": str(err)} for a in err.anomalies]
            continue
        finally:
            landed.unlink()
        found = object_problems(SqlTable(con, [str(parsed)]), schema, ctx.config)
        if found:
            bad[obj.key] = [{**a, "object": obj.key} for a in found]
            continue
        read.append(Part(obj, parsed, rows, fmt))
    if schema is None:
        tables: dict[str, Data] = {p.obj.key: SqlTable(con, [str(p.path)]) for p in read}
        for key, found in consensus_problems(tables, ctx.config).items():
            bad[key] = [{**a, "object": key} for a in found]
        read = [p for p in read if p.obj.key not in bad]
    return read, bad


def _join_features(ctx: StepContext, con: Any, tmp: Path, parsed: Path, offline: dict[str, dict[str, str]]) -> int:
    """The object at ``parsed`` (labelled rows: the entity key, the label and its time) replaced by the same rows
    joined point-in-time to the model's feature sets (:func:`mlops.data.feature_store.join_point_in_time`); its
    rows. An object without the key or the time columns raises :class:`DataValidationError` naming them.
    ``offline``: per set, its offline files by key, each downloaded (once) when an object's labels can reach it."""
    config = ctx.config
    sets = [(ctx.feature_sets.get(use.name), use) for use in config.feature_sets]
    needed = {config.time_column or "", *(k for fs, _ in sets for k in fs.keys)}
    columns = set(SqlTable(con, [str(parsed)]).columns)
    missing = sorted(needed - columns)
    if missing:
        raise DataValidationError(
            f"the labelled rows lack {missing}: a model taking feature sets needs each set's entity key and the "
            f"label's time ({config.time_column})",
            [
                {"code": "MISSING_COLUMN", "severity": "error", "column": c, "description": "needed to join features"}
                for c in missing
            ],
        )
    span = label_dates(con, parsed, str(config.time_column))
    if not offline:  # the first object: the run records the feature set versions it trains on
        ctx.stores.meta.update_run(ctx.model, ctx.run_id, {"feature_sets": feature_set_versions(ctx)})
    joined = []
    for fs, use in sets:
        listed = offline.setdefault(fs.name, dict.fromkeys(_offline_keys(ctx, fs), ""))
        dates = {key: _partition_date(fs, key) for key in listed}
        # only the partitions a label could reach: none after the last label, none older than the TTL before the first
        reach = set(partition_dates_needed(sorted(set(dates.values())), span[0], span[1], fs)) if span else set()
        files = []
        for key, date in dates.items():
            if date not in reach:
                continue
            if not listed[key]:
                listed[key] = str(tmp / "features" / fs.name / key.removeprefix(offline_prefix(fs)).replace("/", "--"))
                Path(listed[key]).parent.mkdir(parents=True, exist_ok=True)
                ctx.stores.artifacts.download(ctx.stores.artifacts.uri(key), listed[key])
            files.append(listed[key])
        joined.append((fs, use, files))
    out = parsed.with_suffix(".joined.parquet")
    rows = join_point_in_time(con, parsed, joined, config, out)
    out.replace(parsed)
    return rows


def _partition_date(fs: FeatureSetConfig, key: str) -> str:
    """The event date of an offline file's partition (``features/<set>/date=YYYY-MM-DD/…``)."""
    return key.removeprefix(offline_prefix(fs)).split("/", 1)[0].removeprefix("date=")


def _offline_keys(ctx: StepContext, fs: FeatureSetConfig) -> list[str]:
    """Every offline Parquet file of ``fs`` (the receipts under ``_ingested/`` are not)."""
    return [
        key
        for key in ctx.stores.artifacts.keys(offline_prefix(fs))
        if key.endswith(".parquet") and key.removeprefix(offline_prefix(fs)).startswith("date=")
    ]


def feature_set_versions(ctx: StepContext) -> list[dict[str, Any]]:
    """The registry versions of the feature sets the model takes features from (lineage: the run and the model
    version record them)."""
    out = []
    for use in ctx.config.feature_sets:
        fs = ctx.feature_sets.get(use.name)
        latest = ctx.stores.meta.latest_schema(registry_key(fs.name))
        out.append(
            {
                "name": fs.name,
                "version": int(latest["version"]) if latest else None,
                "definition_hash": fs.definition_hash(),
                "features": list(use.features or fs.features),
            }
        )
    return out


@pipeline_step("extract")
def extract(ctx: StepContext, *, source: dict[str, Any], limits: EngineLimits | None = None) -> ExtractResult:
    """Read each object on its own, set aside those unusable on their own (unreadable, the target or a schema
    column missing, numbers mixed with text), and go on with the rest when they are enough
    (``validation.max_rejected_object_share``): each set-aside object is named with its problems and quarantined.
    Otherwise the run fails naming every one. Too much data for the step (:func:`size_guard`) fails the run
    before any object is read."""
    gone: list[dict[str, Any]] = []
    objs = resolve_objects(ctx, source, gone)
    ctx.stores.meta.update_run(
        ctx.model,
        ctx.run_id,
        {"objects": [{"bucket": o.bucket, "key": o.key, "etag": o.etag, "version_id": o.version_id} for o in objs]},
    )
    limits = limits or EngineLimits.for_function()
    total = size_guard(objs, ctx, limits)
    with tempfile.TemporaryDirectory(prefix="extract-", dir=limits.temp_root) as tmp, connect(limits) as con:
        con.execute("SET preserve_insertion_order = true")  # each part's rows in the snapshot as they landed
        return _extract(ctx, con, Path(tmp), source, objs, gone, total)


def _extract(
    ctx: StepContext,
    con: Any,
    tmp: Path,
    source: dict[str, Any],
    objs: list[ObjectInfo],
    gone: list[dict[str, Any]],
    total: int,
) -> ExtractResult:
    read, bad = _read_each(ctx, con, tmp, objs, gone)
    if gone:  # nothing to quarantine: named in the run, and the run goes on with what is there
        ctx.stores.meta.update_run(ctx.model, ctx.run_id, {"missing": gone})
        objs = [o for o in objs if o.key not in {g["key"] for g in gone}]
        if not objs:
            raise SourceObjectMissingError("; ".join(g["message"] for g in gone))
    share = ctx.config.validation.max_rejected_object_share
    if bad and (not read or len(bad) > share * len(objs)):
        anomalies = [{k: v for k, v in a.items() if k != "message"} for found in bad.values() for a in found]
        raise DataValidationError(_set_aside_message(bad, len(objs), share), anomalies)
    set_aside = _set_aside(ctx, [o for o in objs if o.key in bad], bad)
    paths = [p.path for p in read]
    manifest_objects: list[dict[str, Any]] = [
        {
            "bucket": p.obj.bucket,
            "key": p.obj.key,
            "etag": p.obj.etag,
            "version_id": p.obj.version_id,
            "size": p.obj.size,
            "rows": p.rows,
            "format": p.fmt.value,
        }
        for p in read
    ]
    if source.get("feedback"):
        labelled = _labelled_traffic(ctx, source["feedback"])
        if labelled is not None:  # served records with their labels: a window of traffic, held as a frame
            paths.append(write_frame(con, normalize(labelled[0]), tmp / "feedback.parquet"))
            manifest_objects.append(labelled[1])
    rows, columns = write_snapshot(con, paths, tmp / "snapshot.parquet")
    for path in paths:  # in the snapshot now: their room on /tmp is the shards'
        path.unlink(missing_ok=True)
    snapshot = ctx.stores.artifacts.put_file(ctx.key("extract", "snapshot.parquet"), str(tmp / "snapshot.parquet"))
    shards, shard_list = _shard(ctx, con, tmp / "snapshot.parquet", rows, tmp / "shards")
    manifest = put_json(
        ctx.stores.artifacts,
        ctx.key("extract", "manifest.json"),
        {
            "objects": manifest_objects,
            "set_aside": set_aside,
            "missing": gone,
            "rows": rows,
            "columns": columns,
            "bytes": total,
            "snapshot": snapshot.as_dict(),
            "shards": shard_list,
        },
    )
    return ExtractResult(
        snapshot=snapshot.as_dict(),
        manifest=manifest.as_dict(),
        rows=rows,
        columns=len(columns),
        objects=len(objs) - len(set_aside),
        bytes=total,
        set_aside=len(set_aside),
        shards=shards,
    )


def _shard(
    ctx: StepContext, con: Any, snapshot: Path, rows: int, out: Path
) -> tuple[ShardsResult | None, list[dict[str, Any]]]:
    """When the snapshot has more rows than one function's statistics should read (``data.shards``,
    ``data.shard_rows``), the snapshot cut into shards under the run's ``extract/shards/``, and the statistics
    plan every shard computes under (the champion's histogram edges counted exactly, so drift is exact when
    merged): the Distributed Map's listing, and the shards the merge expects one partial each of."""
    count = ctx.config.data.shard_count(rows)
    if count <= 1:
        return None, []
    store = ctx.stores.artifacts
    prefix = ctx.key("extract", "shards/")
    listed = []
    for i, (path, n) in enumerate(write_shards(con, snapshot, rows, count, out)):
        ref = store.put_file(f"{prefix}part-{i:05d}.parquet", str(path))
        path.unlink()
        listed.append({"key": f"{prefix}part-{i:05d}.parquet", "rows": n, "sha256": ref.sha256, "size": ref.size})
    plan = StatisticsPlan.from_baseline(champion_statistics(ctx.stores, ctx.model))
    plan_ref = put_json(store, ctx.key("extract", "statistics_plan.json"), plan.as_json())
    result = ShardsResult(count=len(listed), prefix=prefix, results=ctx.key("analyze", "map/"), plan=plan_ref.as_dict())
    return result, listed


def _set_aside(ctx: StepContext, objs: list[ObjectInfo], bad: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Quarantine the objects a run goes on without (prefix and scheduled runs skip them until replaced), and
    record them in the run: each with its problems."""
    out = []
    for obj in objs:
        anomalies = [{k: v for k, v in a.items() if k != "message"} for a in bad[obj.key]]
        codes = sorted({a["code"] for a in anomalies})
        record = {"bucket": obj.bucket, "key": obj.key, "etag": obj.etag, "version_id": obj.version_id}
        ctx.stores.meta.quarantine(
            ctx.model, {**record, "run_id": ctx.run_id, "reason": ", ".join(codes), "at": utcnow_iso()}
        )
        out.append({**record, "codes": codes, "anomalies": anomalies[:MAX_ANOMALIES_IN_RECORD]})
    if out:
        ctx.stores.meta.update_run(ctx.model, ctx.run_id, {"set_aside": out, "quarantined": [o["key"] for o in out]})
    return out
