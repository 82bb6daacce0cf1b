"""A3/A4: check the snapshot against the stored schema and for drift against the champion's data."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from mlops.core.artifact_io import download_verified, get_json, put_json
from mlops.core.context import StepContext
from mlops.core.ports import ArtifactRefDict
from mlops.core.registry import champion_statistics
from mlops.core.results import ValidateDataResult
from mlops.core.runs import MAX_ANOMALIES_IN_RECORD, pipeline_step
from mlops.data.engine import EngineLimits, connect
from mlops.data.schema import carriers, infer_schema, usability, validate
from mlops.data.table import SqlTable


def set_aside_anomalies(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects extract went on without, as warnings in the batch's report (their own problems in the run
    record's ``set_aside``)."""
    return [
        {
            "code": "OBJECT_SET_ASIDE",
            "severity": "warning",
            "column": "",
            "object": o["key"],
            "objects": [o["key"]],
            "description": "set aside and quarantined, the run going on without it: "
            + "; ".join(
                f"{a['code']} {a.get('column') or ''}".strip() + f": {a['description']}" for a in o["anomalies"]
            )[:400],
        }
        for o in manifest.get("set_aside") or []
    ] + [
        {
            "code": "OBJECT_MISSING",
            "severity": "warning",
            "column": "",
            "object": g["key"],
            "objects": [g["key"]],
            "description": f"{g['message']}; the run went on without it",
        }
        for g in manifest.get("missing") or []
    ]


@pipeline_step("validate_data")
def validate_data(
    ctx: StepContext,
    *,
    snapshot: ArtifactRefDict,
    statistics: ArtifactRefDict,
    manifest: ArtifactRefDict | None = None,
    limits: EngineLimits | None = None,
) -> ValidateDataResult:
    """Usability, schema and drift checks. Without a schema yet, the first usable batch's schema is inferred
    as this run's candidate (``schema_version`` 0); only a run that registers a model stores it as a version.
    Each anomaly names the objects that carry it (``objects``, from the ``manifest``'s parts of the snapshot).
    Every check is a query of DuckDB over the snapshot's file on local disk within ``limits`` (else a share of the
    function's memory): the table is never loaded into the step's memory."""
    stores = ctx.stores
    limits = limits or EngineLimits.for_function()
    with (
        tempfile.TemporaryDirectory(prefix="validate-", dir=limits.temp_root) as tmp,
        connect(limits) as con,
    ):
        path = download_verified(stores.artifacts, snapshot, Path(tmp) / "snapshot.parquet")
        return _validate(ctx, SqlTable(con, [str(path)]), manifest)


def _validate(ctx: StepContext, df: SqlTable, manifest: ArtifactRefDict | None) -> ValidateDataResult:
    stores = ctx.stores
    current = stores.meta.latest_schema(ctx.model)
    schema_ref: ArtifactRefDict | None
    if current is not None:
        schema_ref, version = current["schema"], int(current["version"])
        schema: dict[str, Any] | None = get_json(stores.artifacts, schema_ref["uri"])
    else:
        version = 0
        usable = not any(a["severity"] == "error" for a in usability(df, ctx.config))
        schema = infer_schema(df, ctx.config) if usable else None
        schema_ref = (
            put_json(stores.artifacts, ctx.key("validate_data", "schema.json"), schema).as_dict() if schema else None
        )
    baseline = champion_statistics(stores, ctx.model)
    result = validate(df, schema, ctx.config, baseline)
    listing = get_json(stores.artifacts, manifest["uri"]) if manifest else {}
    parts = [(o["key"], int(o["rows"])) for o in listing.get("objects") or []]
    if sum(n for _, n in parts) == df.rows:  # the parts are the snapshot's rows, in order
        carriers(result["anomalies"], df, parts, schema, ctx.config, baseline)
    result["anomalies"] = set_aside_anomalies(listing) + result["anomalies"]
    result["num_warnings"] += len(listing.get("set_aside") or []) + len(listing.get("missing") or [])
    report = put_json(
        stores.artifacts,
        ctx.key("validate_data", "anomalies.json"),
        {**result, "schema_version": version, "baseline": bool(baseline)},
    )
    if result["anomalies"]:
        stores.meta.update_run(ctx.model, ctx.run_id, {"anomalies": result["anomalies"][:MAX_ANOMALIES_IN_RECORD]})
    return ValidateDataResult(
        passed=result["passed"],
        num_errors=result["num_errors"],
        num_warnings=result["num_warnings"],
        anomalies=report.as_dict(),
        schema=schema_ref,
        schema_version=version,
        schema_inferred=current is None,
        drift_checked=baseline is not None,
        drifted_features=sum(1 for d in result["drift"].values() if d["drifted"]),
    )
