"""Row-by-row agreement of the ONNX model (in this runtime) with reference predictions."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlops.serving.onnx_model import OnnxModel


def compare(model: OnnxModel, reference: dict[str, Any], atol: float) -> dict[str, Any]:
    """Answer ``reference["records"]`` through the serving path and compare with scikit-learn's answers.

    A row disagrees when its label differs or a probability (relative value, for regression) differs by
    more than ``atol``. Float32 tree thresholds can flip near-ties, so the honest figure is the share of
    rows that disagree, reported beside the largest gap.
    """
    records = reference["records"]
    n = len(records)
    out: dict[str, Any] = {"rows": n, "atol": atol}
    if n == 0:
        return {**out, "mismatch_rate": 0.0, "mismatches": 0, "max_abs_diff": 0.0}
    labels, proba = model.run(model.feeds_from_records(records))
    if model.is_classifier:
        assert proba is not None
        gap = np.max(np.abs(np.asarray(reference["probabilities"], dtype=float) - proba), axis=1)
        label_diff = np.asarray(labels).astype(str) != np.asarray(reference["predictions"]).astype(str)
        out["label_mismatch_rate"] = float(label_diff.mean())
        bad = label_diff | (gap > atol)
    else:
        want = np.asarray(reference["predictions"], dtype=float)
        gap = np.abs(np.asarray(labels, dtype=float) - want) / np.maximum(1.0, np.abs(want))
        bad = gap > atol
    out.update(mismatch_rate=float(bad.mean()), mismatches=int(bad.sum()), max_abs_diff=float(gap.max()))
    return out


def probe_model(probe: bytes) -> OnnxModel:
    """The feature components' probe graph (:func:`mlops.ml.features.probe_graph`) with the inputs it records."""
    import json

    import onnxruntime as ort

    from mlops.serving.signature import PROBE_KEY, Signature

    session = ort.InferenceSession(probe, providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map[PROBE_KEY])
    model = OnnxModel(probe, Signature("regression", "", meta["inputs"], None))
    model.probe_columns = meta["columns"]  # type: ignore[attr-defined]
    return model


def component_parity(probe: bytes, reference: dict[str, Any], atol: float) -> list[dict[str, Any]]:
    """Each feature component's columns computed by the probe graph in this runtime from ``reference["records"]``,
    against scikit-learn's (``reference["features"]``): per column, the rows that differ (numbers by more than
    ``atol``, relative; missing on one side only; text at all)."""
    model = probe_model(probe)
    records = reference["records"]
    outputs = model.session.run(None, model.feeds_from_records(records)) if records else []
    out = []
    for column, got in zip(model.probe_columns, outputs, strict=False):  # type: ignore[attr-defined]
        want = reference.get("features", {}).get(column["name"], [])
        values = np.asarray(got).ravel()
        if column["kind"] == "numeric":
            a = values.astype(float)
            b = np.array([np.nan if v is None else v for v in want], dtype=float)
            both = np.isnan(a) & np.isnan(b)
            one = np.isnan(a) ^ np.isnan(b)
            gap = np.where(both | one, 0.0, np.abs(a - b) / np.maximum(1.0, np.abs(np.nan_to_num(b))))
            bad = one | (gap > atol)
            largest = float(gap.max()) if len(gap) else 0.0
        else:
            bad = values.astype(str) != np.array(["" if v is None else str(v) for v in want])
            largest = float(bad.any())
        out.append(
            {
                **column,
                "rows": len(values),
                "mismatches": int(bad.sum()),
                "mismatch_rate": float(bad.mean()) if len(values) else 0.0,
                "max_abs_diff": largest,
            }
        )
    return out
