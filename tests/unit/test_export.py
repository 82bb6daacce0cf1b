"""The ONNX export: columns with any name, float32 numerics, the signature that serving relies on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.core.config import Family, FeatureType, Task
from mlops.ml.export import to_onnx
from mlops.ml.models import build_pipeline, model_frame
from mlops.serving.onnx_model import OnnxModel
from mlops.serving.signature import Signature

pytestmark = pytest.mark.unit


def test_given_column_names_with_spaces_when_exported_then_serving_maps_records_by_original_name():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"mean radius (mm)": rng.normal(size=300), "colour/shade": rng.choice(["red", "blue"], 300)})
    y = ((df["mean radius (mm)"] > 0) ^ (df["colour/shade"] == "red")).astype(int)
    kinds = {"mean radius (mm)": FeatureType.NUMERIC, "colour/shade": FeatureType.CATEGORICAL}
    pipe = build_pipeline(Family.GRADIENT_BOOSTING, {"max_iter": 30}, Task.BINARY, kinds, 0)
    pipe.fit(model_frame(df, kinds), y)
    inputs = [{"name": c, "type": k.value} for c, k in kinds.items()]
    model = OnnxModel(to_onnx(pipe, kinds, Signature("binary", "y", inputs, [0, 1])))
    assert [i["input"] for i in model.signature.inputs] != list(kinds)  # skl2onnx renamed them
    rows = model.predict_records(df.head(50).to_dict("records"))
    want = pipe.predict_proba(model_frame(df.head(50), kinds))[:, 1]
    got = np.array([r["probabilities"]["1"] for r in rows])
    assert np.abs(got - want).max() < 1e-5


def test_given_an_oversized_bundle_then_the_build_fails_loudly(tmp_path):
    from mlops.layers.build import BundleTooLargeError, Layer, check_function_size

    (tmp_path / "handler.py").write_text("x = 1\n")
    big = Layer("train", tmp_path, 255_000_000, False)
    code = Layer("code", tmp_path, 8_000_000, True)
    with pytest.raises(BundleTooLargeError, match=r"function 'train' is 263\.0 MB"):
        check_function_size("train", tmp_path, [big, code])
    assert check_function_size("ok", tmp_path, [code]) < 9_000_000


def test_given_a_request_with_categories_then_feeds_warnings_and_problems_follow_training():
    from mlops.serving.service import check_records

    rng = np.random.default_rng(1)
    df = pd.DataFrame({"size": rng.normal(size=200), "plan": rng.choice(["basic", "premium"], 200)})
    y = (df["plan"] == "premium").astype(int)
    kinds = {"size": FeatureType.NUMERIC, "plan": FeatureType.CATEGORICAL}
    pipe = build_pipeline(Family.LOGISTIC_REGRESSION, {}, Task.BINARY, kinds, 0)
    pipe.fit(model_frame(df, kinds), y)
    inputs = [
        {"name": "size", "type": "numeric"},
        {"name": "plan", "type": "categorical", "domain": ["basic", "premium"]},
    ]
    model = OnnxModel(to_onnx(pipe, kinds, Signature("binary", "y", inputs, [0, 1])))
    problems, warnings, feeds, numbers = check_records(
        model, [{"size": 1.0, "plan": "premium"}, {"size": None, "plan": "enterprise"}]
    )
    assert problems == [] and "enterprise" in warnings[0]
    assert numbers.dtype == "float32" and numbers[0, 0] == 1.0 and np.isnan(numbers[1, 0])  # as fed, for capture
    assert feeds["size"].dtype == "float32" and feeds["plan"].ravel().tolist() == ["premium", "enterprise"]
    rows = model.predict_columns(feeds)
    assert rows[0]["prediction"] == 1 and rows[0]["probabilities"]["1"] > 0.5
    problems, _, _, _ = check_records(model, [{"size": float("inf"), "plan": "basic"}, {"size": "1", "plan": None}])
    assert [(p.row, p.field) for p in problems] == [(0, "size"), (1, "size")]  # every problem, together
    problems, _, _, _ = check_records(
        model, [{"size": float("inf"), "plan": "basic"}, {"size": float("nan"), "plan": "basic"}]
    )
    assert [(p.row, p.field, p.problem[:13]) for p in problems] == [(0, "size", "must be a fin")]


@pytest.mark.parametrize("family", [Family.LOGISTIC_REGRESSION, Family.RANDOM_FOREST])
def test_given_a_column_of_thousands_of_ids_then_its_one_hot_is_capped_and_onnx_answers_as_the_pipeline(family):
    """A 5,000-valued column (zip codes, merchant ids): its most frequent categories and one column for the rest,
    not 5,000 dense columns of every row; the ONNX graph maps a rare, and an unseen, value as scikit-learn does."""
    from mlops.core.constants import ONE_HOT_MAX_CATEGORIES

    rng = np.random.default_rng(2)
    n = 4_000
    ids = rng.zipf(1.3, n) % 5_000
    df = pd.DataFrame({"amount": rng.normal(size=n), "merchant": [f"m{k}" for k in ids]})
    y = ((df["amount"] > 0) | (ids < 3)).astype(int)
    kinds = {"amount": FeatureType.NUMERIC, "merchant": FeatureType.CATEGORICAL}
    pipe = build_pipeline(family, {}, Task.BINARY, kinds, 0)
    pipe.fit(model_frame(df, kinds), y)
    assert pipe.named_steps["preprocess"].transform(model_frame(df, kinds)).shape[1] == 1 + ONE_HOT_MAX_CATEGORIES
    assert df["merchant"].nunique() > 5 * ONE_HOT_MAX_CATEGORIES
    inputs = [{"name": c, "type": k.value} for c, k in kinds.items()]
    model = OnnxModel(to_onnx(pipe, kinds, Signature("binary", "y", inputs, [0, 1])))
    probe = df.head(200).copy()
    probe.loc[:19, "merchant"] = "never-seen"  # unseen: no column at all, as in training's handle_unknown
    rows = model.predict_records(probe.to_dict("records"))
    want = pipe.predict_proba(model_frame(probe, kinds))[:, 1]
    got = np.array([r["probabilities"]["1"] for r in rows])
    assert np.abs(got - want).max() < 1e-5
