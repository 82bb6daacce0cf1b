"""Drift: a shifted feature is flagged and unshifted ones are not, on a fixed seed, at two thresholds."""

from __future__ import annotations

import pytest

from mlops.core.config import parse_config
from mlops.data.schema import infer_schema, validate
from mlops.data.stats import frame_statistics, js_distance, psi
from mlops.tools.samples import customers

pytestmark = pytest.mark.unit


def _config(threshold: float, per_feature: dict | None = None):
    return parse_config(
        {
            "name": "churn",
            "data": {"prefix": "churn/"},
            "target": "churn",
            "id_column": "customer_id",
            "training": {"candidates": [{"family": "logistic_regression"}]},
            "validation": {
                "drift": {"default_threshold": threshold, "features": per_feature or {}},
                "max_out_of_range_fraction": 1.0,
            },
        }
    )


@pytest.mark.parametrize("threshold", [0.1, 0.25])
def test_given_one_shifted_feature_when_validated_then_only_it_drifts(threshold: float) -> None:
    cfg = _config(threshold)
    base = customers(3000, seed=1)
    new = customers(3000, seed=2, shift={"support_calls": 1.5})
    schema = infer_schema(base, cfg)
    result = validate(new, schema, cfg, frame_statistics(base, cfg))
    drifted = {c for c, d in result["drift"].items() if d["drifted"]}
    assert drifted == {"support_calls"}
    assert any(a["code"] == "DRIFT" and a["column"] == "support_calls" for a in result["anomalies"])
    assert not result["passed"]


def test_given_the_same_distribution_when_validated_then_nothing_drifts() -> None:
    cfg = _config(0.1)
    base = customers(3000, seed=1)
    result = validate(customers(3000, seed=2), infer_schema(base, cfg), cfg, frame_statistics(base, cfg))
    assert result["drift"] and not any(d["drifted"] for d in result["drift"].values())
    assert result["passed"], result["anomalies"]


def test_given_a_per_feature_threshold_when_validated_then_it_overrides_the_default() -> None:
    base = customers(3000, seed=1)
    new = customers(3000, seed=2, shift={"support_calls": 1.5})
    cfg = _config(0.1, {"support_calls": 50.0})
    result = validate(new, infer_schema(base, cfg), cfg, frame_statistics(base, cfg))
    assert not result["drift"]["support_calls"]["drifted"]


def test_given_a_categorical_shift_when_measured_then_js_distance_grows() -> None:
    same = js_distance({"a": 50, "b": 50}, {"a": 49, "b": 51})
    shifted = js_distance({"a": 50, "b": 50}, {"a": 10, "b": 90})
    assert same < 0.02 < 0.2 < shifted <= 1.0
    assert psi([10] * 10, [10] * 10) == pytest.approx(0.0)


def test_given_each_primary_metric_then_the_fast_path_agrees_with_task_metrics():
    import numpy as np

    from mlops.core.config import Task
    from mlops.ml.metrics import metric_value, task_metrics

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    proba = np.column_stack([1 - (p := rng.random(200)), p])
    pred = (p > 0.5).astype(int)
    full = task_metrics(Task.BINARY, y, pred, proba, [0, 1])
    for metric in ("roc_auc", "accuracy", "log_loss", "f1_macro"):
        assert metric_value(Task.BINARY, metric, y, pred, proba, [0, 1]) == pytest.approx(full[metric])
    yr, pr = rng.normal(size=200), rng.normal(size=200)
    full_r = task_metrics(Task.REGRESSION, yr, pr, None, None)
    for metric in ("rmse", "mae", "r2"):
        assert metric_value(Task.REGRESSION, metric, yr, pr, None, None) == pytest.approx(full_r[metric])
