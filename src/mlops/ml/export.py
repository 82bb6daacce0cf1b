"""skl2onnx export of the whole pipeline and its parity check against scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from onnx import ModelProto
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.pipeline import Pipeline

from mlops.config import FeatureType, Task
from mlops.errors import ModelExportError
from mlops.ml.models import model_frame
from mlops.serving.onnx_model import SIGNATURE_KEY, OnnxModel, Signature

TARGET_OPSET = 17


def to_onnx(pipeline: Pipeline, kinds: dict[str, FeatureType], signature: Signature) -> bytes:
    initial_types = [
        (c, FloatTensorType([None, 1]) if k is FeatureType.NUMERIC else StringTensorType([None, 1]))
        for c, k in kinds.items()
    ]
    model = pipeline.steps[-1][1]
    options = {id(model): {"zipmap": False}} if signature.task != Task.REGRESSION.value else None
    try:
        onx: ModelProto = convert_sklearn(
            pipeline, initial_types=initial_types, options=options, target_opset=TARGET_OPSET
        )
    except Exception as err:  # skl2onnx raises many types for unsupported constructs
        raise ModelExportError(f"skl2onnx could not convert {type(model).__name__}: {err}") from err
    entry = onx.metadata_props.add()
    entry.key, entry.value = SIGNATURE_KEY, signature.to_json()
    return bytes(onx.SerializeToString())


def parity(
    pipeline: Pipeline, onnx_model: OnnxModel, frame: pd.DataFrame, kinds: dict[str, FeatureType], atol: float
) -> dict[str, Any]:
    """Compare scikit-learn and onnxruntime row by row on ``frame``.

    A row disagrees when its label differs or a probability (relative value, for regression) differs by
    more than ``atol``. Float32 tree thresholds can flip near-ties, so the honest figure is the share of
    rows that disagree, reported beside the largest gap; validate_model gates on the share.
    """
    X = model_frame(frame, kinds)
    labels, proba = onnx_model.run({c: X[c].to_numpy().reshape(-1, 1) for c in kinds})
    sk_labels = pipeline.predict(X)
    n = len(X)
    out: dict[str, Any] = {"rows": n, "atol": atol}
    if n == 0:
        return {**out, "mismatch_rate": 0.0, "mismatches": 0, "max_abs_diff": 0.0}
    if onnx_model.is_classifier:
        assert proba is not None
        gap = np.max(np.abs(pipeline.predict_proba(X) - proba), axis=1)
        label_diff = np.asarray(labels).astype(str) != np.asarray(sk_labels).astype(str)
        out["label_mismatch_rate"] = float(label_diff.mean())
        bad = label_diff | (gap > atol)
    else:
        want = np.asarray(sk_labels, dtype=float)
        gap = np.abs(np.asarray(labels, dtype=float) - want) / np.maximum(1.0, np.abs(want))
        bad = gap > atol
    out.update(mismatch_rate=float(bad.mean()), mismatches=int(bad.sum()), max_abs_diff=float(gap.max()))
    return out
