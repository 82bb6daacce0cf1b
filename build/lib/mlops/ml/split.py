"""Shuffled and stratified train/test splits in numpy alone: the very rows scikit-learn's ``train_test_split`` gives.

prepare splits the data and nothing else of scikit-learn's; importing scikit-learn (scipy.stats with it) was most of
its cold start and kept the step in the train bundle. These functions follow ``ShuffleSplit`` and
``StratifiedShuffleSplit`` (scikit-learn 1.4-1.9) draw for draw from the same ``RandomState``, so a seed gives the
same split as before — ``tests/unit/test_split.py`` compares them with scikit-learn's over many shapes and seeds.
"""

from __future__ import annotations

from math import ceil

import numpy as np


def split_sizes(n_samples: int, test_size: float) -> tuple[int, int]:
    """(train rows, test rows) for a fraction ``test_size`` of ``n_samples``: the test side is rounded up."""
    if not 0 < test_size < 1:
        raise ValueError(f"test_size={test_size} should be a fraction in (0, 1)")
    n_test = ceil(test_size * n_samples)
    n_train = n_samples - n_test
    if n_train <= 0:
        raise ValueError(f"{n_samples} rows with test_size={test_size} leave no training rows")
    return n_train, n_test


def approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """The most likely count per class when drawing ``n_draws`` rows without replacement (floors, then the largest
    remainders; ties broken by ``rng``)."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            floored[rng.choice(inds, size=add_now, replace=False)] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


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
