"""What plan_trials counts as a trial's width: the one-hot encoded matrix, not the raw columns."""

from __future__ import annotations

import pytest

from mlops.core.constants import ONE_HOT_MAX_CATEGORIES
from mlops.steps.plan import encoded_width, rows_fitting

pytestmark = pytest.mark.unit


def test_given_categorical_features_then_each_counts_its_domain_or_the_one_hot_cap():
    dataset = {
        "features": {"amount": "numeric", "plan": "categorical", "merchant": "categorical", "day": "numeric"},
        "schema": {
            "features": {
                "plan": {"type": "categorical", "domain": ["basic", "premium", "gold"]},
                "merchant": {"type": "categorical", "domain": None},  # too many values to list
            }
        },
    }
    assert encoded_width(dataset) == 1 + 3 + ONE_HOT_MAX_CATEGORIES + 1 + 1  # and the label
    raw = {"features": {"amount": "numeric", "day": "numeric"}}
    assert encoded_width(raw) == 3
    # ~35 times fewer rows fit a trial than the raw columns would say
    assert rows_fitting(raw, 3008) > 35 * rows_fitting(dataset, 3008)


def test_given_a_refit_past_the_configured_fargate_task_then_the_run_stops_before_its_trials_naming_the_setting():
    from mlops.core.config import parse_config
    from mlops.core.errors import DataTooLargeError
    from mlops.steps.plan import choose_compute

    config = parse_config(
        {
            "name": "wide",
            "data": {"prefix": "wide/"},
            "target": "label",
            "training": {
                "candidates": [{"family": "logistic_regression", "params": {"C": [1.0]}}],
                "compute": "auto",
                "fargate": {"cpu": 2048, "memory_mb": 16384},
                "tune_rows": 200_000,
            },
        }
    )
    numeric = {f"n{i:02d}": "numeric" for i in range(36)}  # 37 columns with the label
    rows = {"train": 35_000_000, "validation": 7_500_000, "train_sample": 200_000, "validation_sample": 42_857}
    dataset = {"features": numeric, "rows": rows, "splits": {"train_sample": {}}}
    with pytest.raises(
        DataTooLargeError,
        match=r"42,500,000 rows x 37 columns.*16,384 MB Fargate task holds.*"
        r"training.fargate.memory_mb is 16,384; raise it",
    ):
        choose_compute(dataset, config, 3008)
    # a tenth of the rows fits the same task: the refit goes there, the trials on the sample
    dataset["rows"] = rows | {"train": 3_500_000, "validation": 750_000}
    assert choose_compute(dataset, config, 3008) == ("fargate", True)
