"""The bootstrap's AUC without scikit-learn's input checks gives scikit-learn's value."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mlops.core.config import Task
from mlops.ml.metrics import average_ranks, baseline_comparison, binary_roc_auc, metric_value, ovr_roc_auc

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("distinct", [2, 5, 50, None])  # few distinct scores: many ties
def test_given_scores_with_or_without_ties_then_the_auc_is_scikit_learns(seed, distinct):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    positive = rng.random(n) < rng.uniform(0.05, 0.95)
    positive[:2] = [True, False]
    score = rng.random(n) if distinct is None else rng.integers(0, distinct, n) / distinct
    assert binary_roc_auc(positive, score) == pytest.approx(roc_auc_score(positive, score), abs=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_given_three_classes_then_the_one_vs_rest_auc_is_scikit_learns(seed):
    rng = np.random.default_rng(seed)
    classes = ["a", "b", "c"]
    y = rng.choice(classes, 300)
    proba = rng.dirichlet([1, 1, 1], 300).round(2)
    proba /= proba.sum(axis=1, keepdims=True)
    expected = roc_auc_score(y, proba, multi_class="ovr", labels=classes)
    assert ovr_roc_auc(y, proba, classes) == pytest.approx(expected, abs=1e-12)
    assert metric_value(Task.MULTICLASS, "roc_auc", y, y, proba, classes) == pytest.approx(expected, abs=1e-12)


def test_given_one_class_only_then_the_auc_is_undefined():
    assert binary_roc_auc(np.array([True, True]), np.array([0.2, 0.4])) is None
    assert ovr_roc_auc(np.array(["a", "a"]), np.array([[0.5, 0.5], [0.4, 0.6]]), ["a", "b"]) is None
    assert metric_value(Task.BINARY, "roc_auc", np.array([1, 1]), np.array([1, 1]), np.ones((2, 2)) / 2, [0, 1]) is None


def test_given_ties_then_they_share_the_mean_of_their_ranks():
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0, 3.0])).tolist() == [4.0, 1.0, 4.0, 2.0, 4.0]


def test_given_a_good_and_a_chance_model_then_only_the_good_one_has_a_lift_bound_above_zero():
    rng = np.random.default_rng(0)
    y_test = rng.integers(0, 2, 1000)
    good = np.clip(y_test * 0.6 + rng.random(1000) * 0.4, 0, 1)
    chance = rng.random(1000)
    for score, positive in ((good, True), (chance, False)):
        proba = np.c_[1 - score, score]
        out = baseline_comparison(Task.BINARY, "roc_auc", y_test, y_test, (score > 0.5).astype(int), proba, [0, 1])
        assert out["value"] == 0.5 and out["resamples"] == 200
        assert (out["lift_low"] > 0) is positive
