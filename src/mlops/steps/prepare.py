"""A5: deterministic splits; the dataset spec (task, feature kinds, classes) the later steps share."""

from __future__ import annotations

import tempfile
from pathlib import Path

from mlops.core.artifact_io import download_verified, get_json, put_json
from mlops.core.config import FeatureType
from mlops.core.context import StepContext
from mlops.core.errors import DataValidationError
from mlops.core.ports import ArtifactRefDict
from mlops.core.results import PrepareResult
from mlops.core.runs import pipeline_step
from mlops.data.engine import EngineLimits
from mlops.data.splits import write_splits


@pipeline_step("prepare")
def prepare(
    ctx: StepContext, *, snapshot: ArtifactRefDict, schema: ArtifactRefDict, limits: EngineLimits | None = None
) -> PrepareResult:
    """The labelled rows of the snapshot split by DuckDB over its file on local disk within ``limits`` (else a
    share of the function's memory), each row's split a function of the row (:mod:`mlops.data.splits`)."""
    store = ctx.stores.artifacts
    spec = get_json(store, schema["uri"])
    target = ctx.config.target
    limits = limits or EngineLimits.for_function()
    with tempfile.TemporaryDirectory(prefix="prepare-", dir=limits.temp_root) as tmp:
        path = download_verified(store, snapshot, Path(tmp) / "snapshot.parquet")
        out = write_splits(path, tmp, ctx.config, limits, sample_rows=ctx.config.training.tune_rows)
        if out.files is None:
            raise DataValidationError(
                f"{out.labelled} labelled rows are too few to split",
                [
                    {
                        "code": "LOW_ROW_COUNT",
                        "severity": "error",
                        "column": target,
                        "description": f"{out.labelled} labelled rows",
                    }
                ],
            )
        # Each split file streamed to the store from disk: a split larger than the function's memory uploads too.
        refs = {
            name: store.put_file(ctx.key("prepare", f"{name}.parquet"), str(file)).as_dict()
            for name, file in out.files.items()
        }
    kinds = {c: FeatureType(s["type"]) for c, s in spec["features"].items()}
    dataset = put_json(
        store,
        ctx.key("prepare", "dataset.json"),
        {
            "task": out.task.value,
            "target": target,
            "features": {c: k.value for c, k in kinds.items()},
            "classes": out.classes,
            "rows": out.rows,
            "splits": refs,
            "schema": spec,
        },
    )
    return PrepareResult(
        dataset=dataset.as_dict(),
        train=refs["train"],
        validation=refs["validation"],
        test=refs["test"],
        task=out.task.value,
        rows=out.rows,
    )
