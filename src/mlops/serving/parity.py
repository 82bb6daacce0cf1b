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
