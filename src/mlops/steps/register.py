"""B6: register the blessed candidate with its lineage; promote it when approval is automatic."""

from __future__ import annotations

from mlops import __version__
from mlops.core.artifact_io import get_json
from mlops.core.constants import CHAMPION
from mlops.core.context import StepContext
from mlops.core.ports import ArtifactRefDict
from mlops.core.registry import APPROVED, PENDING, promote, push_schema, register_version
from mlops.core.results import RegisterResult, TrainResult
from mlops.core.runs import pipeline_step


@pipeline_step("register")
def register(
    ctx: StepContext,
    *,
    snapshot: ArtifactRefDict,
    manifest: ArtifactRefDict,
    statistics: ArtifactRefDict,
    schema: ArtifactRefDict,
    schema_version: int,
    dataset: ArtifactRefDict,
    onnx: ArtifactRefDict,
    evaluation: ArtifactRefDict,
    report: ArtifactRefDict,
    blessing: ArtifactRefDict,
    train: TrainResult,  # the model, its family and parameters
) -> RegisterResult:
    # A change of labels under validation.label_changes: approve waits for a person, whatever registry.approval says.
    requires_approval = bool(get_json(ctx.stores.artifacts, blessing["uri"]).get("requires_approval"))
    manual = ctx.config.registry.approval == "manual" or requires_approval
    if schema_version == 0 and ctx.stores.meta.latest_schema(ctx.model) is None:
        # The first model registered makes its run's inferred schema the reference for later batches.
        pushed = push_schema(
            ctx.stores, ctx.model, get_json(ctx.stores.artifacts, schema["uri"]), "inferred", ctx.run_id
        )
        schema, schema_version = pushed["schema"], pushed["version"]
    ev = get_json(ctx.stores.artifacts, evaluation["uri"])
    run = ctx.stores.meta.get_run(ctx.model, ctx.run_id) or {}
    record = register_version(
        ctx.stores,
        {
            "model": ctx.model,
            "status": PENDING if manual else APPROVED,
            "run_id": ctx.run_id,
            "task": ev["task"],
            "metric": ev["metric"],
            "metrics": ev["metrics"],
            "family": train.family,
            "params": train.params,
            "artifacts": {
                "onnx": onnx,
                "model": train.model,
                "evaluation": evaluation,
                "report": report,
                "blessing": blessing,
                # what the monitor estimates live performance with before labels arrive (when evaluation kept one)
                **{k: v for k, v in (ev.get("calibration") or {}).items() if k == "calibrator"},
            },
            "lineage": {
                "snapshot": snapshot,
                "manifest": manifest,
                "statistics": statistics,
                "schema": schema,
                "schema_version": schema_version,
                "dataset": dataset,
                "config_hash": ctx.config.config_hash(),
                "code_version": run.get("code_version", __version__),
                "trigger": run.get("trigger"),
                "components": train.components,
                # the feature set versions the model trained on (extract's point-in-time join): lineage both ways
                **({"feature_sets": run["feature_sets"]} if run.get("feature_sets") else {}),
            },
        },
    )
    version = record["version"]
    promoted = False
    if not manual:
        promote(ctx.stores, ctx.model, version, reason=f"blessed by run {ctx.run_id}", actor="pipeline")
        promoted = True
    return RegisterResult(
        version=version, status=record["status"], promoted=promoted, alias=CHAMPION if promoted else None
    )
