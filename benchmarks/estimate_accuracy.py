"""Performance estimated before labels (:mod:`mlops.monitoring.estimate`) against the realized metrics.

The data of ``tests/unit/test_estimate.py``: 8 correlated normal features, labels from a known logistic P(y | x) with
an interaction. A model trains on 5,000 rows; its calibrator is fitted on a reference of 10,000 it did not see; each
scenario draws 50,000 fresh rows and compares the estimate with the realized metric, and its 100 windows of 500 rows
count how often the 95 % band holds the realized accuracy (and 20 windows the realized AUC):

- no shift;
- covariate shift: features 0, 1 and 4 moved by 1, 1.5 and 2 standard deviations, P(y | x) unchanged;
- concept shift: labels flipped where x0 > 0.5 (P(y | x) changed, x unchanged).

Three models (boosted trees, naive Bayes, logistic regression), and a 3-class make_classification with naive Bayes.

Run: ``python -m benchmarks.estimate_accuracy``
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.naive_bayes import GaussianNB
from tests.unit.test_estimate import draw

from mlops.monitoring.estimate import calibration_report, estimate

BINARY = [0, 1]
SCENARIOS: dict[str, Any] = {
    "no shift": lambda: draw(50_000, seed=3),
    "covariate shift, 1 SD": lambda: draw(50_000, seed=6, shift=1.0),
    "covariate shift, 1.5 SD": lambda: draw(50_000, seed=6, shift=1.5),
    "covariate shift, 2 SD": lambda: draw(50_000, seed=6, shift=2.0),
    "concept shift (labels flipped where x0 > 0.5)": lambda: _flipped(*draw(50_000, seed=7)),
}


def _flipped(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x, np.where(x[:, 0] > 0.5, 1 - y, y)


def _coverage(calibrate: Any, raw: np.ndarray, y: np.ndarray, classes: list[int]) -> tuple[int, int, float]:
    """Windows of 500 rows whose 95 % band holds the realized accuracy (of 100) and AUC (of 20); ms per estimate."""
    accuracy = auc = 0
    started = time.perf_counter()
    for w in range(100):
        rows = slice(500 * w, 500 * (w + 1))
        draws = 200 if w < 20 else 0
        predicted = raw[rows].argmax(axis=1)
        e = estimate(calibrate(raw[rows]), classes, predicted, scores=raw[rows], auc_draws=draws, seed=w)
        accuracy += e.accuracy_low <= accuracy_score(y[rows], predicted) <= e.accuracy_high
        if draws and e.roc_auc_low is not None and e.roc_auc_high is not None:
            auc += e.roc_auc_low <= roc_auc_score(y[rows], raw[rows, 1]) <= e.roc_auc_high
    return accuracy, auc, (time.perf_counter() - started) * 1000 / 100


def binary() -> None:
    x, y = draw(5_000, seed=1)
    xr, yr = draw(10_000, seed=2)
    models = {
        "boosted trees": HistGradientBoostingClassifier(max_iter=60, random_state=0),
        "naive Bayes": GaussianNB(),
        "logistic regression": LogisticRegression(),
    }
    print(
        "| model | scenario | ECE raw → calibrated (kept) | accuracy est. / realized | error | AUC est. / realized |"
        " error | band holds acc. (of 100) | AUC (of 20) |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for name, model in models.items():
        model.fit(x, y)
        report = calibration_report(model.predict_proba(xr), yr, BINARY)
        calibrate = report.calibrator.apply if report.calibrator else (lambda p: p)
        ece = f"{report.ece_raw:.3f} → {report.ece_calibrated:.3f} ({'yes' if report.kept else 'no'})"
        for scenario, make in SCENARIOS.items():
            xs, ys = make()
            raw = model.predict_proba(xs)
            predicted = raw.argmax(axis=1)
            e = estimate(calibrate(raw), BINARY, predicted, scores=raw, auc_draws=0)
            acc, auc = accuracy_score(ys, predicted), roc_auc_score(ys, raw[:, 1])
            held, held_auc, _ = _coverage(calibrate, raw, ys, BINARY)
            assert e.roc_auc is not None
            print(
                f"| {name} | {scenario} | {ece} | {e.accuracy:.3f} / {acc:.3f} | {e.accuracy - acc:+.3f} |"
                f" {e.roc_auc:.3f} / {auc:.3f} | {e.roc_auc - auc:+.3f} | {held} | {held_auc} |"
            )
            ece = ""


def multiclass() -> None:
    x, y = make_classification(
        n_samples=35_000, n_features=10, n_informative=5, n_classes=3, n_clusters_per_class=1, random_state=0
    )
    model = GaussianNB().fit(x[:5_000], y[:5_000])
    classes = [0, 1, 2]
    report = calibration_report(model.predict_proba(x[5_000:15_000]), y[5_000:15_000], classes)
    assert report.calibrator is not None
    raw = model.predict_proba(x[15_000:])
    predicted = raw.argmax(axis=1)
    started = time.perf_counter()
    e = estimate(report.calibrator.apply(raw), classes, predicted, scores=raw)
    seconds = time.perf_counter() - started
    acc, auc = accuracy_score(y[15_000:], predicted), roc_auc_score(y[15_000:], raw, multi_class="ovr")
    assert e.roc_auc is not None
    print(
        f"\n3 classes, naive Bayes, no shift, 20,000 rows: ECE {report.ece_raw:.3f} → {report.ece_calibrated:.3f};"
        f" accuracy {e.accuracy:.3f} / {acc:.3f} ({e.accuracy - acc:+.3f}),"
        f" macro AUC {e.roc_auc:.3f} / {auc:.3f} ({e.roc_auc - auc:+.3f}); {seconds:.2f} s with 200 bootstrap draws"
    )


def timing() -> None:
    rng = np.random.default_rng(0)
    for n in (500, 10_000, 100_000):
        p = rng.random(n)
        probabilities = np.column_stack([1 - p, p])
        predicted = (p > 0.5).astype(int)
        started = time.perf_counter()
        estimate(probabilities, BINARY, predicted)
        print(f"estimate of {n:,} binary rows (200 bootstrap draws): {time.perf_counter() - started:.3f} s")


if __name__ == "__main__":
    binary()
    multiclass()
    timing()
