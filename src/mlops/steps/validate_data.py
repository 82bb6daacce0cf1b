"""A3/A4: check the snapshot against the stored schema and for drift against the champion's data."""

from __future__ import annotations

from typing import Any

from mlops.adapters.artifacts import get_json, get_verified, put_json
from mlops.clock import utcnow_iso
from mlops.constants import CHAMPION, SCHEMAS_PREFIX
from mlops.context import StepContext, Stores
from mlops.frames import from_parquet_bytes
from mlops.runs import MAX_ANOMALIES_IN_RECORD, pipeline_step
from mlops.schema import infer_schema, validate


def push_schema(
    stores: Stores, model: str, schema: dict[str, Any], source: str, run_id: str | None = None
) -> dict[str, Any]:
    """Store a new schema version (inferred, or edited by a user and pinned); later runs check against it."""
    current = stores.meta.latest_schema(model)
    version = (current["version"] + 1) if current else 1
    ref = put_json(
        stores.artifacts, f"{SCHEMAS_PREFIX}{model}/v{version:04d}/schema.json", {**schema, "version": version}
    )
    record = {"schema": ref.as_dict(), "source": source, "run_id": run_id, "created_at": utcnow_iso()}
    stores.meta.put_schema_version(model, version, record)
    return {"version": version, **record}


def champion_statistics(stores: Stores, model: str) -> dict[str, Any] | None:
    version = stores.meta.get_alias(model, CHAMPION)
    if version is None:
        return None
    record = stores.meta.get_model_version(model, version)
    stats_ref = (record or {}).get("lineage", {}).get("statistics")
    return get_json(stores.artifacts, stats_ref["uri"]) if stats_ref else None


@pipeline_step("validate_data")
def validate_data(ctx: StepContext, *, snapshot: dict[str, Any], statistics: dict[str, Any]) -> dict[str, Any]:
    stores = ctx.stores
    df = from_parquet_bytes(get_verified(stores.artifacts, snapshot))
    current = stores.meta.latest_schema(ctx.model)
    if current is None:
        current = push_schema(stores, ctx.model, infer_schema(df, ctx.config), "inferred", ctx.run_id)
        inferred = True
    else:
        inferred = False
    schema = get_json(stores.artifacts, current["schema"]["uri"])
    baseline = champion_statistics(stores, ctx.model)
    result = validate(df, schema, ctx.config, baseline)
    report = put_json(
        stores.artifacts,
        ctx.key("validate_data", "anomalies.json"),
        {**result, "schema_version": current["version"], "baseline": bool(baseline)},
    )
    if result["anomalies"]:
        stores.meta.update_run(ctx.model, ctx.run_id, {"anomalies": result["anomalies"][:MAX_ANOMALIES_IN_RECORD]})
    return {
        "passed": result["passed"],
        "num_errors": result["num_errors"],
        "num_warnings": result["num_warnings"],
        "anomalies": report.as_dict(),
        "schema": current["schema"],
        "schema_version": current["version"],
        "schema_inferred": inferred,
        "drift_checked": baseline is not None,
        "drifted_features": sum(1 for d in result["drift"].values() if d["drifted"]),
    }
