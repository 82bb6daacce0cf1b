"""prepare's splits without scikit-learn (mlops.ml.split) give exactly the rows train_test_split gives."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from mlops.ml.split import approximate_mode, train_test_positions

pytestmark = pytest.mark.unit

CASES = [
    # (rows, test fraction, labels: None for a plain shuffle, else class weights)
    (10, 0.2, None),
    (1_000, 0.2, None),
    (997, 0.15, None),
    (12, 0.25, (0.5, 0.5)),
    (569, 0.2, (0.63, 0.37)),
    (1_000, 0.25, (0.9, 0.1)),
    (1_003, 0.2, (0.2, 0.3, 0.5)),
    (150, 0.2, (1 / 3, 1 / 3, 1 / 3)),  # equal remainders: ties broken by the generator
    (50, 0.3, (0.5, 0.2, 0.2, 0.1)),
    (20_000, 0.2, (0.97, 0.03)),
]


def labels(rows: int, weights: tuple[float, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    names = np.array([f"class-{i}" for i in range(len(weights))], dtype=object)
    y = rng.choice(names, size=rows, p=np.array(weights) / sum(weights))
    y[: 2 * len(weights)] = np.repeat(names, 2)  # every class at least twice
    return y


@pytest.mark.parametrize(("rows", "test_size", "weights"), CASES)
@pytest.mark.parametrize("seed", [0, 1, 42, 2024])
def test_given_a_seed_then_the_split_is_scikit_learns_row_for_row(rows, test_size, weights, seed):
    y = None if weights is None else labels(rows, weights, seed)
    positions = np.arange(rows)
    expected_train, expected_test = train_test_split(positions, test_size=test_size, random_state=seed, stratify=y)
    train, test = train_test_positions(rows, test_size, seed, y)
    assert train.tolist() == expected_train.tolist()
    assert test.tolist() == expected_test.tolist()


def test_given_both_splits_of_prepare_then_the_rows_are_those_of_the_two_calls_it_replaced():
    y = labels(2_000, (0.7, 0.2, 0.1), 7)
    positions = np.arange(len(y))
    rest_sk, test_sk = train_test_split(positions, test_size=0.15, random_state=42, stratify=y)
    train_sk, val_sk = train_test_split(rest_sk, test_size=0.15 / 0.85, random_state=42, stratify=y[rest_sk])
    rest, test = train_test_positions(len(y), 0.15, 42, y)
    train, val = train_test_positions(len(rest), 0.15 / 0.85, 42, y[rest])
    assert (rest[train].tolist(), rest[val].tolist(), test.tolist()) == (
        train_sk.tolist(),
        val_sk.tolist(),
        test_sk.tolist(),
    )


def test_given_the_approximate_mode_then_it_matches_scikit_learns_examples():
    from sklearn.utils.extmath import _approximate_mode

    for counts, draws, seed in [([4, 2], 3, 0), ([5, 2], 4, 0), ([2, 2, 2, 1], 2, 0), ([2, 2, 2, 1], 2, 42)]:
        ours = approximate_mode(np.array(counts), draws, np.random.RandomState(seed))
        assert ours.tolist() == _approximate_mode(np.array(counts), draws, np.random.RandomState(seed)).tolist()


@pytest.mark.parametrize(
    ("rows", "test_size", "y", "message"),
    [
        (10, 1.0, None, r"fraction in \(0, 1\)"),
        (1, 0.5, None, "leave no training rows"),
        (5, 0.2, np.array(["a", "a", "a", "a", "b"]), "fewer than 2 rows"),
        (6, 0.2, np.array(["a", "a", "b", "b", "c", "c"]), "cannot hold each of 3 classes"),
    ],
)
def test_given_a_split_that_cannot_be_made_then_the_error_says_why(rows, test_size, y, message):
    with pytest.raises(ValueError, match=message):
        train_test_positions(rows, test_size, 0, y)


def test_given_prepare_then_it_imports_no_scikit_learn():
    # the step moved to the data bundle, which has no scikit-learn: a cold start there would fail to import it
    code = "import sys, mlops.steps.prepare; print(sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
