"""A5: deterministic splits; the dataset spec (task, feature kinds, classes) the later steps share."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlops.core.artifact_io import get_json, get_verified, put_json
from mlops.core.config import FeatureType, Task
from mlops.core.context import StepContext
from mlops.core.errors import DataValidationError
from mlops.core.ports import ArtifactRefDict
from mlops.core.results import PrepareResult
from mlops.core.runs import pipeline_step
from mlops.data.frames import from_parquet_bytes, to_parquet_bytes
from mlops.data.stats import infer_task
from mlops.ml.split import train_test_positions


def _split(df: pd.DataFrame, ctx: StepContext, task: Task) -> dict[str, np.ndarray]:
    """The row positions of each split (not copies of the frame: each split is taken, written and dropped in
    turn, so the step holds about one frame)."""
    split = ctx.config.split
    n = len(df)
    if ctx.config.time_column:
        # the frame's index is its row positions here (a RangeIndex): sort the one column, not the frame
        order = df[ctx.config.time_column].sort_values(kind="stable").index.to_numpy()
        a = round(n * split.train)
        b = round(n * (split.train + split.validation))
        return {"train": order[:a], "validation": order[a:b], "test": order[b:]}
    y = df[ctx.config.target]
    stratify = y.to_numpy() if task is not Task.REGRESSION and y.value_counts().min() >= 3 else None
    rest, test = train_test_positions(n, split.test, split.seed, stratify)
    rel_val = split.validation / (split.train + split.validation)
    strat_rest = stratify[rest] if stratify is not None else None
    train, val = train_test_positions(len(rest), rel_val, split.seed, strat_rest)
    return {"train": rest[train], "validation": rest[val], "test": test}


@pipeline_step("prepare")
def prepare(ctx: StepContext, *, snapshot: ArtifactRefDict, schema: ArtifactRefDict) -> PrepareResult:
    store = ctx.stores.artifacts
    df = from_parquet_bytes(get_verified(store, snapshot))
    spec = get_json(store, schema["uri"])
    target = ctx.config.target
    labelled = df[target].notna()
    if not labelled.all():
        df = df[labelled].reset_index(drop=True)
    task = ctx.config.task or infer_task(df[target])
    kinds = {c: FeatureType(s["type"]) for c, s in spec["features"].items()}
    if task is not Task.REGRESSION:
        df[target] = df[target].astype(str) if df[target].dtype == object else df[target]
    splits = _split(df, ctx, task)
    rows = {name: len(positions) for name, positions in splits.items()}
    if min(rows.values()) == 0:
        raise DataValidationError(
            f"{len(df)} labelled rows are too few to split",
            [
                {
                    "code": "LOW_ROW_COUNT",
                    "severity": "error",
                    "column": target,
                    "description": f"{len(df)} labelled rows",
                }
            ],
        )
    refs = {
        name: store.put_bytes(ctx.key("prepare", f"{name}.parquet"), to_parquet_bytes(df.take(positions))).as_dict()
        for name, positions in splits.items()
    }
    classes = sorted(df[target].unique().tolist()) if task is not Task.REGRESSION else None
    dataset = put_json(
        store,
        ctx.key("prepare", "dataset.json"),
        {
            "task": task.value,
            "target": target,
            "features": {c: k.value for c, k in kinds.items()},
            "classes": classes,
            "rows": rows,
            "splits": refs,
            "schema": spec,
        },
    )
    return PrepareResult(dataset=dataset.as_dict(), **refs, task=task.value, rows=rows)
