"""The run page's training line: where the candidate was refit, on how many rows the trials fit, and how many test
rows evaluate scored."""

from __future__ import annotations

import pytest

from mlops.reports.site import training_rows

pytestmark = pytest.mark.unit


def run(compute: str, tune_rows: int, **samples: int) -> dict:
    rows = {"train": 14_000_000, "validation": 3_000_000, "test": 3_000_000, **samples}
    return {
        "steps": {
            "plan_trials": {"outputs": {"compute": compute, "tune_rows": tune_rows}},
            "prepare": {"outputs": {"rows": rows}},
        }
    }


def test_given_a_fargate_run_with_a_sample_then_both_are_shown():
    shown = run("fargate", 1_000_000, train_sample=1_000_000, validation_sample=214_286, test_sample=214_286)
    assert training_rows(shown) == {
        "compute": "ECS Fargate",
        "tuned": 1_000_000,
        "sampled": True,
        "train": 14_000_000,
        "refit": 17_000_000,
        "test": 3_000_000,
        "scored": 214_286,
        "test_sampled": True,
    }


def test_given_a_lambda_run_then_the_trials_fit_the_whole_split():
    shown = training_rows(run("lambda", 14_000_000))
    assert shown is not None and (shown["compute"], shown["sampled"]) == ("Lambda", False)
    assert (shown["scored"], shown["test_sampled"]) == (3_000_000, False)
    assert training_rows({"steps": {}}) is None  # a run that stopped before plan_trials
