"""A1: read CSV / Parquet / JSON Lines from S3 into one snapshot, with a manifest for lineage."""

from __future__ import annotations

from typing import Any

import pandas as pd

from mlops.artifact_io import put_json
from mlops.context import StepContext
from mlops.errors import DataTooLargeError, DataValidationError
from mlops.frames import detect_format, read_table, to_parquet_bytes
from mlops.ports import ObjectInfo
from mlops.runs import pipeline_step
from mlops.steps.results import ExtractResult


def resolve_objects(ctx: StepContext, source: dict[str, Any]) -> list[ObjectInfo]:
    """The objects a run reads: the given keys, or every data file under a prefix that is not quarantined
    (an object a failed run rejected, unless it has been replaced since: its ETag differs)."""
    cfg = ctx.config.data
    bucket = source.get("bucket") or cfg.bucket or ctx.stores.landing_bucket
    if not bucket:
        raise ValueError("no bucket: set data.bucket or the landing bucket (MLOPS_LANDING_BUCKET)")
    reader = ctx.stores.reader
    if source.get("keys"):
        objs = [reader.head(bucket, k) for k in source["keys"]]
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
    from mlops.constants import CAPTURES_PREFIX
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


@pipeline_step("extract")
def extract(ctx: StepContext, *, source: dict[str, Any]) -> ExtractResult:
    cfg = ctx.config.data
    objs = resolve_objects(ctx, source)
    ctx.stores.meta.update_run(
        ctx.model,
        ctx.run_id,
        {"objects": [{"bucket": o.bucket, "key": o.key, "etag": o.etag, "version_id": o.version_id} for o in objs]},
    )
    total = sum(o.size for o in objs)
    if total > cfg.max_bytes:
        raise DataTooLargeError(
            f"{len(objs)} object(s) hold {total:,} bytes, above data.max_bytes={cfg.max_bytes:,}; "
            "raise the limit (and the extract function's memory) or narrow data.prefix"
        )
    frames: list[pd.DataFrame] = []
    manifest_objects: list[dict[str, Any]] = []
    rows = 0
    for obj in objs:
        fmt = detect_format(obj.key, cfg.format)
        df = read_table(ctx.stores.reader.read(obj), obj.key, fmt)
        rows += len(df)
        if rows > cfg.max_rows:
            raise DataTooLargeError(f"more than data.max_rows={cfg.max_rows:,} rows; raise it or narrow the prefix")
        frames.append(df)
        manifest_objects.append(
            {
                "bucket": obj.bucket,
                "key": obj.key,
                "etag": obj.etag,
                "version_id": obj.version_id,
                "size": obj.size,
                "rows": len(df),
                "format": fmt.value,
            }
        )
    if source.get("feedback"):
        labelled = _labelled_traffic(ctx, source["feedback"])
        if labelled is not None:
            frames.append(labelled[0])
            manifest_objects.append(labelled[1])
            rows += len(labelled[0])
    snapshot_df = pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 else frames[0]
    snapshot = ctx.stores.artifacts.put_bytes(ctx.key("extract", "snapshot.parquet"), to_parquet_bytes(snapshot_df))
    manifest = put_json(
        ctx.stores.artifacts,
        ctx.key("extract", "manifest.json"),
        {
            "objects": manifest_objects,
            "rows": len(snapshot_df),
            "columns": [str(c) for c in snapshot_df.columns],
            "bytes": total,
            "snapshot": snapshot.as_dict(),
        },
    )
    return ExtractResult(
        snapshot=snapshot.as_dict(),
        manifest=manifest.as_dict(),
        rows=len(snapshot_df),
        columns=len(snapshot_df.columns),
        objects=len(objs),
        bytes=total,
    )
