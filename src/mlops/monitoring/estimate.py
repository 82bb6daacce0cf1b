"""Issue 32, part 2: a classifier's performance estimated before its labels arrive (confidence-based, as CBPE).

With probabilities that are calibrated — of the rows given probability p of a class, a share p belongs to it — each
row's true class is a draw from its probability vector, and the metrics of a window follow in expectation without a
label: the expected confusion matrix is ``C[j, l] = Σ_i P[i, j]·[ŷ_i = l]`` (binary: TP = Σp·[ŷ=1], FP = Σ(1-p)·[ŷ=1],
FN = Σp·[ŷ=0], TN = Σ(1-p)·[ŷ=0]), accuracy its trace over the rows.

Two parts, for two moments:

- at evaluation, :func:`calibration_report` / :func:`fit_calibrator` fit a :class:`Calibrator` on a held-out labelled
  reference the model did not train on, and keep it only if it lowers the expected calibration error out of sample
  (both errors are recorded); it serialises to plain JSON (:meth:`Calibrator.to_json`);
- in the monitor, :meth:`Calibrator.apply` then :func:`estimate` turn a window's probabilities into an
  :class:`Estimate`: accuracy and ROC AUC with a 95 % band for the value the labels will show.

The limits, which no amount of data removes: the estimate is only as good as the calibration, and calibration is a
property of P(y | x) on the reference. A covariate shift (x moves, P(y | x) stays) is seen; a concept shift (P(y | x)
changes) is not — the probabilities do not move, so neither does the estimate. Regression (direct loss estimation)
is not covered here.

Imports numpy only: the monitor loads scikit-learn only when labels are scored, and applying a calibrator or
estimating needs none. Fitting an isotonic calibrator imports scikit-learn (the evaluate step, the train bundle).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Labels, classes or predictions: a list, or a numpy array (a model's ``classes_``, its ``predict``).
Labels = Sequence[Any] | np.ndarray
FORMAT = "mlops.calibrator/1"
# Below this many reference rows, Platt's sigmoid (two parameters per class) rather than isotonic regression (a free
# step per distinct level): Niculescu-Mizil & Caruana (2005) found isotonic overfitting and losing to Platt with
# fewer than about 1,000 calibration rows, and scikit-learn's user guide warns of the same on small sets.
ISOTONIC_MIN_ROWS = 1000
FOLDS = 5
# Below this, five folds of a reference hold too few rows a fold to bin an ECE on: no calibrator is fitted or kept.
MIN_CALIBRATION_ROWS = 50
LEVEL = 0.95
Z_95 = 1.959963984540054
# The exact Poisson-binomial distribution (an O(n²) recursion) up to this many rows; its normal approximation beyond.
EXACT_ROWS = 2000
AUC_DRAWS = 200
_EPS = 1e-12


# ----------------------------------------------------------------------------------------------------------- helpers


def _class_index(y: Labels, classes: Labels) -> np.ndarray:
    """Each label's column in ``classes``; an unknown label is an error, not a silent class."""
    lookup = {c: i for i, c in enumerate(classes)}
    values = np.asarray(y).tolist()
    try:
        return np.fromiter((lookup[v] for v in values), dtype=np.int64, count=len(values))
    except KeyError as exc:
        raise ValueError(f"label {exc.args[0]!r} is not one of the classes {list(classes)}") from exc


def _as_matrix(probabilities: np.ndarray, classes: Labels) -> np.ndarray:
    p = np.asarray(probabilities, dtype=float)
    if p.ndim != 2 or p.shape[1] != len(classes) or len(classes) < 2:
        raise ValueError(f"probabilities must be n x {len(classes)} (one column per class), got {p.shape}")
    return p


# ------------------------------------------------------------------------------------------------------- calibration


def expected_calibration_error(probabilities: np.ndarray, y: Labels, classes: Labels, bins: int = 10) -> float:
    """Class-wise ECE: for each class, Σ_b (n_b / n)·|frequency of the class_b - mean probability_b| over ``bins``
    equal-width bins of its probability; binary, that of ``classes[1]`` (the other column's is the same); multiclass,
    the mean over classes (Kull et al., 2019).

    Class-wise, not top-label (the largest probability against accuracy, Guo et al., 2017): the calibrator maps each
    class's column, so the error it is judged by is that of the columns; and a top-label bin of binary confidence c
    mixes rows of p = c and p = 1 - c, whose errors cancel when a model is over-confident on one side and
    under-confident on the other (probabilities p for a truth of p², say) — a miscalibration the AUC estimate and any
    shift of the mix would pay for. ECE on n rows has a positive bias of order √(bins / n), the same for two sets of
    probabilities compared on the same rows.
    """
    p = _as_matrix(probabilities, classes)
    truth = _class_index(y, classes)
    errors = []
    for j in [1] if len(classes) == 2 else range(len(classes)):
        which = np.minimum((p[:, j] * bins).astype(np.int64), bins - 1)
        gap = np.bincount(which, weights=(truth == j) - p[:, j], minlength=bins)
        errors.append(float(np.abs(gap).sum() / max(len(p), 1)))
    return float(np.mean(errors))


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(q / (1 - q))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def _fit_sigmoid(p: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Platt scaling on the logit of the probability: P = 1 / (1 + exp(-(a·logit(p) + b))), by damped Newton steps.

    Platt's smoothed targets ((N₊ + 1)/(N₊ + 2) and 1/(N₋ + 2)) keep the optimum finite even when the reference is
    separated (a model of 0/1 probabilities); each step is halved until the log loss falls.
    """
    s = _logit(p)
    positives = float(target.sum())
    negatives = float(len(target) - positives)
    t = np.where(target > 0, (positives + 1) / (positives + 2), 1 / (negatives + 2))

    def loss(a: float, b: float) -> float:
        z = a * s + b
        return float((np.logaddexp(0.0, z) - t * z).sum())

    a, b = 1.0, 0.0
    current = loss(a, b)
    for _ in range(100):
        f = _sigmoid(a * s + b)
        w = f * (1 - f) + 1e-12
        grad = np.array([((f - t) * s).sum(), (f - t).sum()])
        hess = np.array([[(w * s * s).sum(), (w * s).sum()], [(w * s).sum(), w.sum()]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-6 and loss(a - scale * step[0], b - scale * step[1]) > current:
            scale /= 2
        a, b = a - scale * float(step[0]), b - scale * float(step[1])
        previous, current = current, loss(a, b)
        if previous - current < 1e-12 * max(1.0, abs(current)):
            break
    return {"a": a, "b": b}


def _fit_isotonic(p: np.ndarray, target: np.ndarray) -> dict[str, list[float]]:
    from sklearn.isotonic import IsotonicRegression  # the evaluate step only: applying needs numpy alone

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, target)
    return {"x": [float(v) for v in iso.X_thresholds_], "y": [float(v) for v in iso.y_thresholds_]}


@dataclass(frozen=True)
class Calibrator:
    """A per-class map of probabilities, fitted on a labelled reference; JSON in and out, numpy to apply.

    ``maps`` holds one map per calibrated column: binary, one (of ``classes[1]``, the other column is its complement);
    multiclass, one per class, the rows then renormalised to sum to 1. An isotonic map is its thresholds
    (``{"x": [...], "y": [...]}``, applied by linear interpolation between them and clipped at the ends, as
    scikit-learn's ``IsotonicRegression.predict``); a sigmoid map is ``{"a": a, "b": b}`` on the logit of p.
    """

    method: str  # "isotonic" | "sigmoid"
    classes: tuple[Any, ...]
    maps: tuple[dict[str, Any], ...]
    ece_raw: float  # mean over the reference's folds of the raw probabilities' ECE (the model never saw them)
    ece_calibrated: float  # mean over the folds of the ECE of a map fitted on the other folds: out of sample
    rows: int
    bins: int = 10

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, n x k, each row summing to 1."""
        p = _as_matrix(probabilities, self.classes)
        if len(self.classes) == 2:
            p1 = self._map(self.maps[0], p[:, 1])
            return np.column_stack([1 - p1, p1])
        out = np.column_stack([self._map(m, p[:, j]) for j, m in enumerate(self.maps)])
        total = out.sum(axis=1, keepdims=True)
        # Every class mapped to 0 (isotonic can): the raw row, rather than a division by zero.
        return np.where(total > _EPS, out / np.maximum(total, _EPS), p / p.sum(axis=1, keepdims=True))

    def _map(self, m: dict[str, Any], p: np.ndarray) -> np.ndarray:
        if self.method == "isotonic":
            return np.interp(p, m["x"], m["y"])
        return _sigmoid(m["a"] * _logit(p) + m["b"])

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "method": self.method,
                "classes": list(self.classes),
                "maps": list(self.maps),
                "ece_raw": self.ece_raw,
                "ece_calibrated": self.ece_calibrated,
                "rows": self.rows,
                "bins": self.bins,
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Calibrator:
        d = json.loads(text)
        if d.get("format") != FORMAT:
            raise ValueError(f"not a calibrator of format {FORMAT}: {d.get('format')!r}")
        return cls(
            method=d["method"],
            classes=tuple(d["classes"]),
            maps=tuple(d["maps"]),
            ece_raw=d["ece_raw"],
            ece_calibrated=d["ece_calibrated"],
            rows=d["rows"],
            bins=d["bins"],
        )


@dataclass(frozen=True)
class CalibrationReport:
    """What evaluation records: both errors, the method tried, and the calibrator if it was kept (else None)."""

    method: str
    ece_raw: float
    ece_calibrated: float
    rows: int
    calibrator: Calibrator | None

    @property
    def kept(self) -> bool:
        return self.calibrator is not None


def _fit_maps(p: np.ndarray, truth: np.ndarray, k: int, method: str) -> tuple[dict[str, Any], ...]:
    fit = _fit_isotonic if method == "isotonic" else _fit_sigmoid
    columns = [1] if k == 2 else list(range(k))
    return tuple(fit(p[:, j], (truth == j).astype(float)) for j in columns)


def _folds(truth: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold number per row, stratified by class (each class dealt round-robin in a seeded random order)."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(truth), dtype=np.int64)
    offset = 0
    for j in np.unique(truth):
        rows = rng.permutation(np.flatnonzero(truth == j))
        fold[rows] = (np.arange(len(rows)) + offset) % folds
        offset += len(rows)
    return fold


def calibration_report(
    probabilities: np.ndarray,
    y: Labels,
    classes: Labels,
    *,
    bins: int = 10,
    folds: int = FOLDS,
    seed: int = 0,
    method: str | None = None,
) -> CalibrationReport:
    """Fit a calibrator on a labelled reference the model did not train on; keep it only if it lowers the ECE.

    The comparison is out of sample on both sides, fold by fold: the reference is dealt into ``folds`` stratified
    folds; on each, the ECE of the raw probabilities (the model never saw these rows) and that of a map fitted on the
    other folds; each recorded ECE is the mean over folds. Not the ECE of the map on the rows it was fitted on (its own
    overfit would favour it), and not one ECE of the pooled cross-fitted probabilities either: leave-one-fold-out
    fits reproduce, in sum, the labels of the whole reference, and a binned error of the pooled rows comes out below
    its noise floor — optimistic for the calibrator. The kept calibrator is then refitted on the whole reference.
    ``method`` defaults to isotonic from :data:`ISOTONIC_MIN_ROWS` rows, sigmoid below. For a model that is already
    calibrated the two errors differ by the folds' noise alone, and whether a map is kept is then a toss-up (harmless:
    either is calibrated).
    """
    p = _as_matrix(probabilities, classes)
    truth = _class_index(y, classes)
    k, n = len(classes), len(p)
    method = method or ("isotonic" if n >= ISOTONIC_MIN_ROWS else "sigmoid")
    if method not in ("isotonic", "sigmoid"):
        raise ValueError(f"method must be 'isotonic' or 'sigmoid', got {method!r}")
    # numpy scalars (a model's classes_) become Python ones: the calibrator is JSON.
    names = tuple(c.item() if isinstance(c, np.generic) else c for c in classes)
    fold = _folds(truth, folds, seed)
    raw_errors, calibrated_errors = [], []
    for f in range(folds):
        test = fold == f
        part = Calibrator(method, names, _fit_maps(p[~test], truth[~test], k, method), 0.0, 0.0, 0, bins)
        labels = [classes[i] for i in truth[test]]
        raw_errors.append(expected_calibration_error(p[test], labels, classes, bins))
        calibrated_errors.append(expected_calibration_error(part.apply(p[test]), labels, classes, bins))
    ece_raw, ece_calibrated = float(np.mean(raw_errors)), float(np.mean(calibrated_errors))
    kept = None
    if ece_calibrated < ece_raw:
        maps = _fit_maps(p, truth, k, method)
        kept = Calibrator(method, names, maps, ece_raw, ece_calibrated, n, bins)
    return CalibrationReport(method, ece_raw, ece_calibrated, n, kept)


def fit_calibrator(probabilities: np.ndarray, y: Labels, classes: Labels, **options: Any) -> Calibrator | None:
    """The calibrator of :func:`calibration_report`, or None: the raw probabilities are kept (its ECE was not lower)."""
    return calibration_report(probabilities, y, classes, **options).calibrator


# -------------------------------------------------------------------------------------------------------- estimation


@dataclass(frozen=True)
class Estimate:
    """A window's metrics estimated from calibrated probabilities, each with a band for the value the labels will show.

    ``confusion[j][l]`` is the expected count of rows of true class ``classes[j]`` predicted ``classes[l]``. The bands
    (``level``, 95 %) are prediction intervals for the realized metric of *this* window given calibrated probabilities:
    they do not include the calibrator's own estimation error, nor any concept shift.
    """

    rows: int
    classes: tuple[Any, ...]
    confusion: list[list[float]]
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    roc_auc: float | None
    roc_auc_low: float | None
    roc_auc_high: float | None
    level: float = LEVEL

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "classes": list(self.classes),
            "confusion": self.confusion,
            "accuracy": self.accuracy,
            "accuracy_band": [self.accuracy_low, self.accuracy_high],
            "roc_auc": self.roc_auc,
            "roc_auc_band": [self.roc_auc_low, self.roc_auc_high],
            "level": self.level,
        }


def poisson_binomial_interval(q: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Central ``level`` interval of Σ Bernoulli(q_i), as counts.

    Exact (the distribution by the recursion P_{i}(s) = P_{i-1}(s)(1 - q_i) + P_{i-1}(s - 1) q_i) up to
    :data:`EXACT_ROWS` rows; beyond, the normal approximation with mean Σq and variance Σq(1 - q).
    """
    q = np.asarray(q, dtype=float)
    n = len(q)
    if n == 0:
        return 0.0, 0.0
    tail = (1 - level) / 2
    if n <= EXACT_ROWS:
        pmf = np.zeros(n + 1)
        pmf[0] = 1.0
        for i, qi in enumerate(q, start=1):
            pmf[1 : i + 1] = pmf[1 : i + 1] * (1 - qi) + pmf[:i] * qi
            pmf[0] *= 1 - qi
        cdf = np.cumsum(pmf)
        low = int(np.searchsorted(cdf, tail - 1e-12))
        high = int(np.searchsorted(cdf, 1 - tail - 1e-12))
        return float(low), float(min(high, n))
    z = Z_95 if level == LEVEL else _normal_quantile(1 - tail)
    mean, sd = float(q.sum()), math.sqrt(float((q * (1 - q)).sum()))
    return max(0.0, mean - z * sd), min(float(n), mean + z * sd)


def _normal_quantile(p: float) -> float:
    """Φ⁻¹(p) by bisection on erf (the standard library has no inverse): enough for a band's level."""
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def expected_auc(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """E[pairs ordered right] / E[pairs], each row positive with probability ``positive[i]``, independently.

    The realized AUC is Σ_{i≠j} Y_i(1 - Y_j)·h(s_i, s_j) / (N₊N₋), h = 1 if s_i > s_j, ½ on a tie. The expectation of
    the numerator is Σ_{i≠j} p_i(1 - p_j)·h_ij, that of the denominator Σ_{i≠j} p_i(1 - p_j) (= E[N₊(n - N₊)]); their
    ratio is the estimate (the expectation of the ratio differs by O(1/n)). Computed in O(n log n) over sorted scores;
    None when no pair can be formed.
    """
    p = np.asarray(positive, dtype=float)
    s = np.asarray(scores, dtype=float)
    levels, group = np.unique(s, return_inverse=True)
    pos = np.bincount(group, weights=p, minlength=len(levels))
    neg = np.bincount(group, weights=1 - p, minlength=len(levels))
    self_pairs = np.bincount(group, weights=p * (1 - p), minlength=len(levels))
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
    numerator = float((pos * below).sum() + 0.5 * (pos * neg - self_pairs).sum())
    denominator = float(p.sum() * (1 - p).sum() - self_pairs.sum())
    return numerator / denominator if denominator > _EPS else None


def _midranks(s: np.ndarray) -> np.ndarray:
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    _, group = np.unique(s, return_inverse=True)
    return np.bincount(group, weights=ranks)[group] / np.bincount(group)[group]


def _auc_of_draws(labels: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC per row of a draws x n 0/1 matrix, from the scores' mid-ranks (ties count ½)."""
    n_pos = labels.sum(axis=1)
    n_neg = labels.shape[1] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        return (labels @ ranks - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _auc_band(p: np.ndarray, scores: np.ndarray, draws: int, seed: int, level: float) -> tuple[float, float] | None:
    """Parametric bootstrap: ``draws`` label vectors drawn from the calibrated probabilities, the realized (macro
    one-vs-rest) AUC of each against the scores, and the central ``level`` interval of those AUCs."""
    rng = np.random.default_rng(seed)
    n, k = p.shape
    columns = [1] if k == 2 else list(range(k))
    ranks = [_midranks(scores[:, j]) for j in columns]
    cumulative = np.cumsum(p, axis=1)
    aucs: list[np.ndarray] = []
    for start in range(0, draws, 50):  # 50 draws at a time: a draws x n matrix, bounded
        b = min(50, draws - start)
        drawn = (rng.random((b, n, 1)) > cumulative[None, :, :]).sum(axis=2)  # a class index per row and draw
        pairs = zip(columns, ranks, strict=True)
        per_class = np.stack([_auc_of_draws((drawn == j).astype(float), r) for j, r in pairs])
        finite = np.isfinite(per_class)
        with np.errstate(invalid="ignore"):  # a draw with no positive (or no negative) of every class: NaN, dropped
            aucs.append(np.where(finite, per_class, 0.0).sum(axis=0) / finite.sum(axis=0))
    values = np.concatenate(aucs)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None
    tail = (1 - level) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def estimate(
    probabilities_calibrated: np.ndarray,
    classes: Labels,
    predicted: Labels,
    *,
    scores: np.ndarray | None = None,
    level: float = LEVEL,
    auc_draws: int = AUC_DRAWS,
    seed: int = 0,
) -> Estimate:
    """Accuracy and ROC AUC of a window estimated from calibrated probabilities, with ``level`` bands.

    ``predicted`` are the labels the model served (not recomputed: a threshold other than ½ is honoured). ``scores``
    are what the realized AUC will rank rows by — the model's own probabilities, n x k; by default the calibrated ones
    (an isotonic map is monotone but creates ties, so pass the raw scores to estimate the AUC the labels will show).

    Accuracy: the correct count is Σ Bernoulli(q_i), q_i = the calibrated probability of the predicted class (a
    Poisson-binomial sum): the estimate is Σq / n, the band :func:`poisson_binomial_interval` / n. ROC AUC: binary,
    :func:`expected_auc` of ``classes[1]``; multiclass, the macro average of one-vs-rest expected AUCs (as
    ``roc_auc_score(multi_class="ovr")``); the band by a seeded parametric bootstrap of ``auc_draws`` label draws.
    """
    p = _as_matrix(probabilities_calibrated, classes)
    n, k = p.shape
    guess = _class_index(predicted, classes)
    s = p if scores is None else _as_matrix(scores, classes)
    if len(guess) != n or len(s) != n:
        raise ValueError(f"{n} rows of probabilities, {len(guess)} predictions and {len(s)} rows of scores")
    confusion = np.zeros((k, k))
    for label in range(k):
        confusion[:, label] = p[guess == label].sum(axis=0)
    q = p[np.arange(n), guess]
    low, high = poisson_binomial_interval(q, level) if n else (0.0, 0.0)
    columns = [1] if k == 2 else list(range(k))
    per_class = [expected_auc(p[:, j], s[:, j]) for j in columns]
    known = [a for a in per_class if a is not None]
    auc = float(np.mean(known)) if known else None
    band = _auc_band(p, s, auc_draws, seed, level) if auc is not None and auc_draws > 0 else None
    return Estimate(
        rows=n,
        classes=tuple(classes),
        confusion=confusion.tolist(),
        accuracy=float(q.mean()) if n else float("nan"),
        accuracy_low=low / n if n else float("nan"),
        accuracy_high=high / n if n else float("nan"),
        roc_auc=auc,
        roc_auc_low=band[0] if band else None,
        roc_auc_high=band[1] if band else None,
        level=level,
    )
