"""One pass per scoring: a classifier's labels are the arg-max of the probabilities it computed."""

from __future__ import annotations

import numpy as np
import pytest

from mlops.core.config import Family, FeatureType, Task
from mlops.ml.models import build_pipeline, model_frame, predict
from mlops.tools.samples import bundled


@pytest.mark.parametrize(
    "family", [Family.LOGISTIC_REGRESSION, Family.RANDOM_FOREST, Family.EXTRA_TREES, Family.GRADIENT_BOOSTING]
)
@pytest.mark.parametrize(("dataset", "task"), [("breast-cancer", Task.BINARY), ("iris", Task.MULTICLASS)])
def test_given_a_classifier_then_labels_from_its_probabilities_match_its_own_predict(family, dataset, task):
    df = bundled(dataset)
    X, y = df.drop(columns=["target"]), df["target"].astype(str)
    kinds = {c: FeatureType.NUMERIC for c in X.columns}
    params = {"n_estimators": 20} if family in (Family.RANDOM_FOREST, Family.EXTRA_TREES) else {}
    params = {"max_iter": 20} if family is Family.GRADIENT_BOOSTING else params
    pipe = build_pipeline(family, params, task, kinds, 0)
    frame = model_frame(X, kinds)
    pipe.fit(frame, y)
    classes = sorted(y.unique().tolist())
    pred, proba = predict(pipe, frame, task, [*classes, "never-seen"])
    assert (pred == pipe.predict(frame)).all()
    assert proba is not None and proba.shape == (len(X), len(classes) + 1)
    assert np.allclose(proba[:, :-1], pipe.predict_proba(frame)) and not proba[:, -1].any()


def test_given_integer_labels_then_the_trivial_baseline_is_named_by_its_label_not_a_numpy_repr():
    from mlops.ml.metrics import baseline_comparison

    y_train, y_test = np.array([0, 1, 1, 1]), np.array([1, 0, 1, 1])
    proba = np.array([[0.2, 0.8], [0.7, 0.3], [0.1, 0.9], [0.4, 0.6]])
    out = baseline_comparison(Task.BINARY, "roc_auc", y_train, y_test, (proba[:, 1] > 0.5).astype(int), proba, [0, 1])
    assert out["model"] == "the majority class 1 with the training class priors"
