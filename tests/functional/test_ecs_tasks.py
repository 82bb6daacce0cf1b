"""The emulator's ``ecs:runTask.sync``: moto calls its ECS backend with the state's PascalCase parameters and never
runs a container (nor stops one, so ``.sync`` never ends). Through :mod:`mlops.local.seams` the task's container runs
as a process with the task's memory enforced, and the state ends as in AWS: the stopped task's description, or
``States.TaskFailed`` with it as the cause when its container exited non-zero."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from mlops.core.runs import _error_of
from mlops.local import seams
from tests.functional.test_distributed_map import ACCOUNT, REGION, aws  # noqa: F401 - the fixture

pytestmark = pytest.mark.functional

FAMILY = "train-task"
CLUSTER = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/training"


def run_task_machine(memory: str | None = None) -> dict[str, Any]:
    """The app's refit state, reduced: runTask.sync of one task definition, the run named in the container's
    environment, the size overridden, a Catch that keeps the error."""
    overrides: dict[str, Any] = {
        "ContainerOverrides": [{"Name": "train", "Environment": [{"Name": "RUN", "Value.$": "$.run_id"}]}]
    }
    if memory:
        overrides |= {"Cpu": "256", "Memory": memory}
    return {
        "StartAt": "TrainOnFargate",
        "States": {
            "TrainOnFargate": {
                "Type": "Task",
                "Resource": "arn:aws:states:::ecs:runTask.sync",
                "Parameters": {
                    "Cluster": CLUSTER,
                    "TaskDefinition": FAMILY,
                    "NetworkConfiguration": {
                        "AwsvpcConfiguration": {"AssignPublicIp": "ENABLED", "Subnets": ["subnet-1"]}
                    },
                    "Overrides": overrides,
                    "CapacityProviderStrategy": [{"CapacityProvider": "FARGATE", "Weight": 1}],
                },
                "ResultPath": "$.task",
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}],
                "End": True,
            },
            # the execution's cause is what the Catch got ({"Error", "Cause"}), as the app's finalize reads it
            "Failed": {"Type": "Fail", "Error": "PipelineFailed", "CausePath": "States.JsonToString($.error)"},
        },
    }


def register(program: str, tmp_path, memory_mb: int = 4096) -> None:
    seams.register_task_definition(
        seams.TaskDefinition(
            family=FAMILY,
            arn=f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{FAMILY}:1",
            container="train",
            command=["python", "-m", "tests.ecs_program"],
            env={"PROGRAM": program, "OUT": str(tmp_path / "out.txt"), "PYTHONPATH": ":".join(sys.path)},
            cpu=1024,
            memory_mb=memory_mb,
            log_group="/ecs/train",
            stream_prefix="train",
        )
    )


def test_given_a_task_that_exits_zero_then_the_state_gets_the_stopped_task_and_the_container_got_its_overrides(
    aws,  # noqa: F811
    tmp_path,
):
    register("ok", tmp_path)

    ended = aws.run(run_task_machine(), {"run_id": "run-42"})

    assert ended.status == "SUCCEEDED", ended.cause
    task = ended.output["task"]
    assert (task["LastStatus"], task["StopCode"], task["Containers"][0]["ExitCode"]) == (
        "STOPPED",
        "EssentialContainerExited",
        0,
    )
    assert task["TaskArn"].startswith(f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/training/")
    assert (tmp_path / "out.txt").read_text() == "run-42"  # the override reached the container's environment
    assert seams.tasks_run[-1]["CapacityProviderName"] == "FARGATE"


def test_given_a_task_whose_container_exits_non_zero_then_the_state_fails_naming_its_exit_code(
    aws,  # noqa: F811
    tmp_path,
):
    """moto's resolver returned the stopped task whatever its exit code: the state succeeded."""
    register("fail", tmp_path)

    ended = aws.run(run_task_machine(), {"run_id": "run-43"})

    assert (ended.status, ended.error) == ("FAILED", "PipelineFailed"), ended.cause
    assert "TaskFailed" in ended.events
    error = json.loads(ended.cause or "{}")
    assert error["Error"] == "States.TaskFailed", error
    caught = json.loads(error["Cause"])  # the stopped task, as DescribeTasks gives it
    assert caught["Containers"][0]["ExitCode"] == 3 and caught["TaskArn"] == seams.tasks_run[-1]["TaskArn"]
    message = _error_of(error)["message"]  # the run record's message
    assert "stopped: Essential container in task exited; container train exit code 3" in message


def test_given_a_task_past_its_memory_then_it_is_killed_and_the_state_fails_naming_the_oom(
    aws,  # noqa: F811
    tmp_path,
):
    """The run's memory override (512 MiB here), not the task definition's 4 GiB, is what the container may use."""
    register("grow", tmp_path)

    ended = aws.run(run_task_machine(memory="512"), {"run_id": "run-44"})

    error = json.loads(ended.cause or "{}")
    assert (ended.status, error.get("Error")) == ("FAILED", "States.TaskFailed"), ended.cause
    killed = json.loads(error["Cause"])
    assert killed["TaskArn"] == seams.tasks_run[-1]["TaskArn"]
    container = killed["Containers"][0]
    assert (container["ExitCode"], container["Reason"]) == (
        137,
        "OutOfMemoryError: Container killed due to memory usage",
    )
    assert (
        400 < seams.tasks_run[-1]["PeakRssMb"] <= 512 + 64
    )  # killed at the limit (polled every 20 ms), not at the 4 GiB
    assert killed["Memory"] == "512"


def test_given_an_s3_get_object_state_then_its_body_is_text_an_intrinsic_parses(aws):  # noqa: F811
    """How the refit's result comes back: moto left the Body as botocore's stream, and States.StringToJson failed."""
    aws.s3.put_object(Bucket="shards", Key="runs/r1/train/task-result.json", Body=b'{"family": "linear"}')
    machine = {
        "StartAt": "ReadTaskResult",
        "States": {
            "ReadTaskResult": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
                "Parameters": {"Bucket": "shards", "Key": "runs/r1/train/task-result.json"},
                "ResultSelector": {"result.$": "States.StringToJson($.Body)"},
                "ResultPath": "$.train",
                "End": True,
            }
        },
    }

    ended = aws.run(machine, {"run_id": "r1"})

    assert ended.status == "SUCCEEDED", ended.cause
    assert ended.output["train"] == {"result": {"family": "linear"}}
