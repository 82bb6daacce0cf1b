"""Shuffled and stratified train/test splits in numpy alone: the very rows scikit-learn's ``train_test_split`` gives.

prepare split by row positions with these until it split by a hash of each row (:mod:`mlops.data.splits`, where the
class allocation :func:`approximate_mode` and :func:`split_sizes` now live). They follow ``ShuffleSplit`` and
``StratifiedShuffleSplit`` (scikit-learn 1.4-1.9) draw for draw from the same ``RandomState``, so a seed gives the
same split — ``tests/unit/test_split.py`` compares them with scikit-learn's over many shapes and seeds."""

from __future__ import annotations

import numpy as np

from mlops.data.splits import approximate_mode, split_sizes

__all__ = ["approximate_mode", "split_sizes", "train_test_positions"]


def train_test_positions(
    n_samples: int, test_size: float, seed: int, stratify: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(train positions, test positions) of ``n_samples`` rows, shuffled, each class in proportion when ``stratify``
    holds the rows' labels."""
    n_train, n_test = split_sizes(n_samples, test_size)
    rng = np.random.RandomState(seed)
    if stratify is None:
        permutation = rng.permutation(n_samples)
        return permutation[n_test : n_test + n_train], permutation[:n_test]
    classes, y_indices, class_counts = np.unique(stratify, return_inverse=True, return_counts=True)
    if class_counts.min() < 2:
        raise ValueError(f"classes {classes[class_counts < 2].tolist()} have fewer than 2 rows: cannot stratify")
    if min(n_train, n_test) < len(classes):
        raise ValueError(f"{n_train} train and {n_test} test rows cannot hold each of {len(classes)} classes")
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    n_i = approximate_mode(class_counts, n_train, rng)
    t_i = approximate_mode(class_counts - n_i, n_test, rng)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for i, count in enumerate(class_counts):
        rows = class_indices[i].take(rng.permutation(count), mode="clip")
        train.append(rows[: n_i[i]])
        test.append(rows[n_i[i] : n_i[i] + t_i[i]])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))
