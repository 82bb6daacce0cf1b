"""The benchmark's model of a run's cold starts with the warm-up (benchmarks.data_steps.cold_on_path)."""

from __future__ import annotations

import pytest
from benchmarks.data_steps import PATH, cold_on_path

pytestmark = pytest.mark.unit

COLD = dict.fromkeys(PATH, 1.0) | {"prepare": 3.0}


def test_given_no_warm_up_then_every_function_on_the_path_waits_for_its_cold_start():
    assert cold_on_path(COLD, {}, warm_up=False) == COLD


def test_given_the_warm_up_then_the_run_waits_for_extract_and_for_what_is_left_of_the_slowest_init_at_each_join():
    # t: extract cold 1 + 0.5 = 1.5 → join 1: prepare's init (3, sent at 0) has 1.5 left → 3.0 → analyze 0.2,
    # validate_data 0.2 → 3.4 → join 2: the training steps' inits (1, sent at 0) are long done.
    steps = {"extract": 0.5, "analyze": 0.2, "validate_data": 0.2, "prepare": 0.2}
    assert cold_on_path(COLD, steps, warm_up=True) == {"extract": 1.0, "prepare": 1.5}


def test_given_a_training_init_longer_than_the_data_steps_then_the_run_waits_only_for_its_remainder():
    # extract ends at 2.0; prepare's init (3) has 1 left → 3.0; the data steps take 0.5 → 3.5; run_trial's 4 s init
    # has 0.5 left — not a new 4 s cold start, as when the step found its environment still initializing.
    steps = {"extract": 1.0, "analyze": 0.25, "validate_data": 0.25}
    assert cold_on_path(COLD | {"run_trial": 4.0}, steps, warm_up=True) == {
        "extract": 1.0,
        "prepare": 1.0,
        "run_trial": 0.5,
    }


def test_given_steps_slower_than_every_init_then_only_extract_waits():
    steps = dict.fromkeys(PATH, 5.0)
    assert cold_on_path(COLD, steps, warm_up=True) == {"extract": 1.0}
