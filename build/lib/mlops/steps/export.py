"""The whole pipeline to ONNX (float32 numerics, one input per column, no zipmap).

Runs in the export bundle (scikit-learn + skl2onnx, no Parquet reader); the parity check runs later
in validate_model, inside the serving runtime.
"""

from __future__ import annotations

import io
from typing import Any

import joblib

from mlops.core.artifact_io import get_verified
from mlops.core.context import StepContext
from mlops.core.ports import ArtifactRefDict
from mlops.core.results import ExportResult
from mlops.core.runs import pipeline_step
from mlops.ml.export import to_onnx
from mlops.ml.features import probe_graph
from mlops.ml.prepared import Dataset, load_dataset
from mlops.serving.signature import Signature


def signature_for(ds: Dataset, id_column: str | None = None) -> Signature:
    inputs = []
    for col, kind in ds.kinds.items():
        spec = ds.schema["features"].get(col, {})
        entry: dict[str, Any] = {"name": col, "type": kind.value}
        for k in ("domain", "min", "max"):
            if spec.get(k) is not None:
                entry[k] = spec[k]
        inputs.append(entry)
    return Signature(task=ds.task.value, target=ds.target, inputs=inputs, classes=ds.classes, id_column=id_column)


@pipeline_step("export")
def export(ctx: StepContext, *, dataset: ArtifactRefDict, model: ArtifactRefDict) -> ExportResult:
    store = ctx.stores.artifacts
    ds = load_dataset(store, dataset)
    pipe = joblib.load(io.BytesIO(get_verified(store, model)))
    onnx_bytes = to_onnx(pipe, ds.kinds, signature_for(ds, ctx.config.id_column))
    onnx_ref = store.put_bytes(ctx.key("export", "model.onnx"), onnx_bytes)
    features = pipe.named_steps.get("features")
    probe = (
        store.put_bytes(ctx.key("export", "features.onnx"), probe_graph(features, ds.kinds)).as_dict()
        if features is not None
        else None
    )
    return ExportResult(onnx=onnx_ref.as_dict(), size_bytes=len(onnx_bytes), inputs=len(ds.kinds), features=probe)
