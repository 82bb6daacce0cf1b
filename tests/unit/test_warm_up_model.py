"""The benchmark's model of a run's cold starts with the warm-up (benchmarks.data_steps.cold_on_path)."""

from __future__ import annotations

import pytest
from benchmarks.data_steps import PATH, cold_on_path

pytestmark = pytest.mark.unit

COLD = dict.fromkeys(PATH, 1.0) | {"prepare": 3.0}


def test_given_no_warm_up_then_every_function_on_the_path_waits_for_its_cold_start():
    assert cold_on_path(COLD, {}, warm_up=False) == COLD


def test_given_the_warm_up_then_extract_and_the_steps_reached_before_their_init_is_done_still_wait():
    # t: extract cold 1 + 0.5 → analyze (ready at 1) warm → 1.7 → validate_data warm → 1.9, the training steps'
    # warm-ups sent → prepare (ready at 3) not yet: a new environment, 3 s → 5.1 → plan_trials (ready at 1)
    # warm → run_trial (sent at 1.9, ready at 2.9) warm, and so on.
    steps = {"extract": 0.5, "analyze": 0.2, "validate_data": 0.2, "prepare": 0.2}
    assert cold_on_path(COLD, steps, warm_up=True) == {"extract": 1.0, "prepare": 3.0}


def test_given_the_training_steps_warmed_only_once_the_batch_is_valid_then_a_quick_first_one_still_waits():
    # validate_data ends at 2.0 and the training steps' warm-ups are sent; prepare (ready at 3.0) waits 3 → 5.0;
    # plan_trials (warmed from the start) is ready; run_trial, sent at 2.0 with a 4 s init, is not.
    steps = {"extract": 1.0}
    assert cold_on_path(COLD | {"run_trial": 4.0}, steps, warm_up=True) == {
        "extract": 1.0,
        "prepare": 3.0,
        "run_trial": 4.0,  # sent at 2.0, ready at 6.0, reached at 5.0
    }


def test_given_steps_slower_than_every_init_then_only_extract_waits():
    steps = dict.fromkeys(PATH, 5.0)
    assert cold_on_path(COLD, steps, warm_up=True) == {"extract": 1.0}
