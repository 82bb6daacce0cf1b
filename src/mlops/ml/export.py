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


def parity(pipeline: Pipeline, onnx_model: OnnxModel, frame: pd.DataFrame,
           kinds: dict[str, FeatureType]) -> dict[str, Any]:
    """Compare scikit-learn and onnxruntime on ``frame``: max probability gap and label mismatch rate."""
    X = model_frame(frame, kinds)
    labels, proba = onnx_model.run({c: X[c].to_numpy().reshape(-1, 1) for c in kinds})
    sk_labels = pipeline.predict(X)
    out: dict[str, Any] = {"rows": len(X)}
    if onnx_model.is_classifier:
        assert proba is not None
        sk_proba = pipeline.predict_proba(X)
        out["max_abs_proba_diff"] = float(np.max(np.abs(sk_proba - proba))) if len(X) else 0.0
        mismatch = np.asarray(labels).astype(str) != np.asarray(sk_labels).astype(str)
        out["label_mismatch_rate"] = float(mismatch.mean()) if len(X) else 0.0
        out["label_mismatches"] = int(mismatch.sum())
    else:
        diff = np.abs(np.asarray(labels, dtype=float) - np.asarray(sk_labels, dtype=float))
        scale = max(1.0, float(np.abs(sk_labels).max())) if len(X) else 1.0
        out["max_abs_diff"] = float(diff.max()) if len(X) else 0.0
        out["max_rel_diff"] = float(diff.max() / scale) if len(X) else 0.0
    return out
