"""Feature and model components in the pipeline and in its ONNX graph; LightGBM exported with onnxmltools."""

from __future__ import annotations

import hashlib
import sys

import numpy as np
import pandas as pd
import pytest

from mlops.components import ComponentError, FeatureComponent, provenance
from mlops.core.config import FeatureStep, FeatureType, Task
from mlops.core.errors import ModelExportError
from mlops.ml.export import opset_for, to_onnx
from mlops.ml.models import build_pipeline, model_frame
from mlops.serving.onnx_model import OnnxModel
from mlops.serving.signature import Signature

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("starter_components")]


def _frame(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    stamps = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 2 * 365 * 24 * 60, n), unit="min")
    frame = pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 50.0, n),
            "income": rng.choice([0.0, 1000.0, 2500.0, 4000.0], n),
            "plan": rng.choice(["basic", "pro", None], n).astype(object),
            "signup_at": [
                s.strftime("%Y-%m-%dT%H:%M:%S") if i % 5 else s.strftime("%Y-%m-%d %H:%M") for i, s in enumerate(stamps)
            ],
        }
    )
    frame.loc[::11, "amount"] = np.nan
    frame.loc[::13, "signup_at"] = None
    frame.loc[7, "signup_at"] = "not a date"
    y = ((frame["amount"].fillna(0) / frame["income"].replace(0, np.nan)).fillna(0) > 0.03).astype(int).to_numpy()
    y = y ^ (stamps.hour.to_numpy() < 6)
    return frame, y


KINDS = {
    "amount": FeatureType.NUMERIC,
    "income": FeatureType.NUMERIC,
    "plan": FeatureType.CATEGORICAL,
    "signup_at": FeatureType.CATEGORICAL,
}
STEPS = (
    FeatureStep(component="components.features:Ratio", params={"num": "amount", "den": "income", "name": "ratio"}),
    FeatureStep(component="components.features:TimestampParts", params={"column": "signup_at"}, drop_inputs=True),
)


def signature_for(task: Task, target: str, kinds: dict, classes: list | None) -> Signature:
    return Signature(task.value, target, [{"name": c, "type": k.value} for c, k in kinds.items()], classes)


def _served(pipe, task: Task, frame: pd.DataFrame, kinds=KINDS) -> tuple[OnnxModel, list[dict]]:
    signature = signature_for(task, "y", kinds, [0, 1] if task is not Task.REGRESSION else None)
    model = OnnxModel(to_onnx(pipe, kinds, signature))
    records = [
        {c: (None if pd.isna(v) else v) for c, v in row.items()} for row in frame[list(kinds)].to_dict("records")
    ]
    return model, records


@pytest.mark.parametrize("family", ["logistic_regression", "lightgbm", "random_forest"])
def test_given_feature_components_then_the_graph_computes_them_from_raw_records_as_scikit_learn_does(family):
    frame, y = _frame()
    pipe = build_pipeline(
        family, {"n_estimators": 30} if family != "logistic_regression" else {}, Task.BINARY, KINDS, 0, STEPS
    )
    pipe.fit(model_frame(frame, KINDS), y)
    added = pipe.named_steps["features"].transform(model_frame(frame.head(3), KINDS))
    assert {"ratio", "signup_at_hour", "signup_at_weekday", "signup_at_month"} <= set(added.columns)
    assert "signup_at" not in added.columns  # drop_inputs: the raw text is no feature
    assert opset_for(pipe)[""] == 20  # TimestampParts splits strings
    model, records = _served(pipe, Task.BINARY, frame)
    answers = model.predict_records(records)
    expected = pipe.predict_proba(model_frame(frame, KINDS))[:, 1]
    got = np.array([a["probabilities"]["1"] for a in answers])
    assert np.abs(got - expected).max() < 1e-4


def test_given_timestamps_then_the_parts_are_right_and_the_same_in_onnx():
    frame = pd.DataFrame(
        {
            "signup_at": [
                "2024-03-15T13:45:00",  # a Friday
                "2024-03-17 23:59",  # a Sunday
                "2000-02-29",  # a Tuesday, midnight
                "1999-12-31T00:00:00+02:00",  # a Friday: the zone is read as written
                "",
                "2024-13-01",  # no 13th month
                "junk",
            ]
        }
    )
    from components.features import TimestampParts

    parts = TimestampParts("signup_at").fit(frame).transform(frame)
    expected = [(13, 4, 3), (23, 6, 3), (0, 1, 2), (0, 4, 12)]
    got = parts[["signup_at_hour", "signup_at_weekday", "signup_at_month"]].to_numpy()
    assert [tuple(int(v) for v in row) for row in got[:4]] == expected
    assert np.isnan(got[4:]).all()
    kinds = {"signup_at": FeatureType.CATEGORICAL}
    pipe = build_pipeline("linear", {}, Task.REGRESSION, kinds, 0, STEPS[1:])
    pipe.fit(model_frame(frame, kinds), np.arange(len(frame), dtype=float))
    model, records = _served(pipe, Task.REGRESSION, frame, kinds)
    assert np.allclose(
        [a["prediction"] for a in model.predict_records(records)], pipe.predict(model_frame(frame, kinds))
    )


@pytest.mark.parametrize("task", [Task.BINARY, Task.MULTICLASS, Task.REGRESSION])
def test_given_lightgbm_behind_the_preprocessing_then_onnx_answers_as_lightgbm(task):
    frame, y = _frame(800, seed=3)
    kinds = {k: v for k, v in KINDS.items() if k != "signup_at"}
    if task is Task.MULTICLASS:
        y = np.digitize(frame["amount"].fillna(100).to_numpy(), [60, 140])
    elif task is Task.REGRESSION:
        y = frame["amount"].fillna(0).to_numpy() * 0.3 + (frame["plan"] == "pro") * 10
    pipe = build_pipeline("lightgbm", {"n_estimators": 60}, task, kinds, 0)
    pipe.fit(model_frame(frame, kinds), y)
    classes = sorted(set(y.tolist())) if task is not Task.REGRESSION else None
    signature = signature_for(task, "y", kinds, classes)
    model = OnnxModel(to_onnx(pipe, kinds, signature))
    records = [
        {c: (None if pd.isna(v) else v) for c, v in row.items()} for row in frame[list(kinds)].to_dict("records")
    ]
    answers = model.predict_records(records)
    X = model_frame(frame, kinds)
    if task is Task.REGRESSION:
        assert np.abs(np.array([a["prediction"] for a in answers]) - pipe.predict(X)).max() < 1e-3
    else:
        got = np.array([[a["probabilities"][str(c)] for c in classes] for a in answers])
        assert np.abs(got - pipe.predict_proba(X)).max() < 1e-5


class NoOnnx(FeatureComponent):
    def __init__(self, column: str = "amount") -> None:
        self.column = column

    def input_columns(self):
        return [self.column]

    def output_columns(self):
        return {"twice": "numeric"}

    def compute(self, X):
        return {"twice": X[self.column].to_numpy() * 2}


def test_given_a_component_without_an_onnx_form_then_export_fails_naming_it(monkeypatch):
    module = type(sys)("tmp_components")
    module.NoOnnx = NoOnnx
    NoOnnx.__module__ = "tmp_components"
    monkeypatch.setitem(sys.modules, "tmp_components", module)
    frame, y = _frame(200)
    kinds = {"amount": FeatureType.NUMERIC, "income": FeatureType.NUMERIC}
    pipe = build_pipeline(
        "random_forest", {"n_estimators": 5}, Task.BINARY, kinds, 0, (FeatureStep(component="tmp_components:NoOnnx"),)
    )
    pipe.fit(model_frame(frame, kinds), y)
    with pytest.raises(ModelExportError, match=r"tmp_components:NoOnnx: NoOnnx has no ONNX form"):
        to_onnx(pipe, kinds, signature_for(Task.BINARY, "y", kinds, [0, 1]))


def test_given_bad_component_specs_then_each_is_refused_naming_step_and_rule():
    kinds = {"amount": FeatureType.NUMERIC}
    cases = {
        "components.features:Nope": "has no class 'Nope'",
        "nowhere.at_all:Ratio": "cannot import 'nowhere.at_all'",
        "pandas:DataFrame": "is not a mlops.components.FeatureComponent",
    }
    for path, message in cases.items():
        with pytest.raises(ComponentError, match=message):
            build_pipeline("linear", {}, Task.REGRESSION, kinds, 0, (FeatureStep(component=path),))
    ratio = FeatureStep(component="components.features:Ratio", params={"num": "amount", "den": "income"})
    with pytest.raises(ComponentError, match=r"features.steps\[0\] \(components.features:Ratio\) reads \['income'\]"):
        build_pipeline("linear", {}, Task.REGRESSION, kinds, 0, (ratio,))


def test_given_a_model_component_derived_from_scikit_learn_then_it_trains_and_exports_and_the_lineage_names_it(
    tmp_path, monkeypatch
):
    source = "from sklearn.linear_model import LogisticRegression\n\n\nclass Balanced(LogisticRegression):\n    pass\n"
    (tmp_path / "my_models.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_models", raising=False)
    frame, y = _frame(300)
    kinds = {"amount": FeatureType.NUMERIC, "plan": FeatureType.CATEGORICAL}
    pipe = build_pipeline("my_models:Balanced", {"C": 0.5}, Task.BINARY, kinds, 0)
    assert "scale" in pipe.named_steps["preprocess"].transformers[0][1].named_steps  # a linear model is scaled
    pipe.fit(model_frame(frame, kinds), y)
    model, records = _served(pipe, Task.BINARY, frame, kinds)
    got = np.array([a["probabilities"]["1"] for a in model.predict_records(records)])
    assert np.abs(got - pipe.predict_proba(model_frame(frame, kinds))[:, 1]).max() < 1e-4
    with pytest.raises(ComponentError, match="is not a regressor"):
        build_pipeline("my_models:Balanced", {}, Task.REGRESSION, kinds, 0)
    record = provenance(pipe.named_steps["model"])
    assert record["component"] == "my_models:Balanced" and record["params"]["C"] == 0.5
    assert record["sha256"] == hashlib.sha256(source.encode()).hexdigest()
