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
