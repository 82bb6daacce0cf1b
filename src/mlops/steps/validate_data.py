"""A3/A4: check the snapshot against the stored schema and for drift against the champion's data."""

from __future__ import annotations

from typing import Any

from mlops.artifact_io import get_json, get_verified, put_json
from mlops.constants import CHAMPION
from mlops.context import StepContext, Stores
from mlops.frames import from_parquet_bytes
from mlops.ports import ArtifactRefDict
from mlops.runs import MAX_ANOMALIES_IN_RECORD, pipeline_step
from mlops.schema import infer_schema, usability, validate
from mlops.steps.results import ValidateDataResult


def champion_statistics(stores: Stores, model: str) -> dict[str, Any] | None:
    version = stores.meta.get_alias(model, CHAMPION)
    if version is None:
        return None
    record = stores.meta.get_model_version(model, version)
    stats_ref = (record or {}).get("lineage", {}).get("statistics")
    return get_json(stores.artifacts, stats_ref["uri"]) if stats_ref else None


@pipeline_step("validate_data")
def validate_data(ctx: StepContext, *, snapshot: ArtifactRefDict, statistics: ArtifactRefDict) -> ValidateDataResult:
    """Usability, schema and drift checks. Without a schema yet, the first usable batch's schema is inferred
    as this run's candidate (``schema_version`` 0); only a run that registers a model stores it as a version."""
    stores = ctx.stores
    df = from_parquet_bytes(get_verified(stores.artifacts, snapshot))
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
