"""The train step as an ECS Fargate task: the refit of the chosen candidate on the whole training split, past what
one Lambda holds. The same code as the train function (:func:`mlops.steps.train.select_and_refit`, the same event
model, the same stores over the same resources), in a container built from the same pins.

The state machine writes the step's input (its state: the run, the prepared dataset, the trials) to
``runs/<run>/train/task-input.json`` and names the run in the environment (``MLOPS_TASK_RUN_ID``); the task writes
the step's result to ``runs/<run>/train/task-result.json`` for the state machine to read back. An exception exits
non-zero (ECS stops the task, Step Functions fails the state with its exit code and stop reason); the step's
failure is in the run record already, as the Lambda's would be.

Run: ``python -m mlops.tasks.train`` (the image's command).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

from mlops.core.artifact_io import get_json, put_json
from mlops.core.constants import ENV_TASK_RUN_ID, RUNS_PREFIX, TASK_INPUT_NAME, TASK_RESULT_NAME
from mlops.steps.train import select_and_refit
from mlops.wiring.handlers import SelectEvent, step_context, stores

log = logging.getLogger("mlops.task")


def task_key(run_id: str, name: str) -> str:
    """The key of the task's input or result (``TASK_INPUT_NAME``, ``TASK_RESULT_NAME``) in the artifacts bucket."""
    return f"{RUNS_PREFIX}{run_id}/train/{name}"


def run(run_id: str) -> dict[str, object]:
    """Refit the run's chosen candidate and write the train step's result; returns it."""
    store = stores().artifacts
    event = SelectEvent.model_validate(get_json(store, store.uri(task_key(run_id, TASK_INPUT_NAME))))
    if event.run_id != run_id:
        raise ValueError(f"the task input names run {event.run_id}, the task was started for run {run_id}")
    result = select_and_refit(step_context(event), dataset=event.prepare.dataset, trials=event.trials).as_state()
    put_json(store, task_key(run_id, TASK_RESULT_NAME), result)
    return result


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run_id = os.environ.get(ENV_TASK_RUN_ID, "")
    if not run_id:
        log.error("missing environment variable %s: the state machine names the run", ENV_TASK_RUN_ID)
        return 2
    try:
        result = run(run_id)
    except Exception:  # noqa: BLE001 - any failure is the task's: its exit code and log are what ECS reports
        traceback.print_exc()
        return 1
    log.info("run %s: refit %s in %ss", run_id, result.get("family"), result.get("refit_s"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
