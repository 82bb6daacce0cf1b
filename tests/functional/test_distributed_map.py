"""#29: a Step Functions Distributed Map runs in the emulator as AWS runs it, not as moto does.

Each test starts an execution through the public Step Functions API against moto with the emulator's seams installed,
on a definition shaped as ``sfn.DistributedMap`` synthesizes it (``ItemProcessor.ProcessorConfig`` with Mode and
ExecutionType; ItemReader, ItemBatcher, ToleratedFailure*, ResultWriter at the state's level), and asserts what AWS
does where moto (5.2.6) does otherwise: a listing past 1,000 objects, batches, EXPRESS children, a failing child that
fails the Map unless tolerated, the ResultWriter's files, MaxConcurrency.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops.local import seams
from mlops.tools.platform import LIVENESS_S

pytestmark = pytest.mark.functional

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sfn"
BUCKET = "shards"
PASS_CHILD = {"StartAt": "Shard", "States": {"Shard": {"Type": "Pass", "End": True}}}
# A child that fails when its item says so (the shard's Lambda raising, in the app).
FAILING_CHILD = {
    "StartAt": "Broken?",
    "States": {
        "Broken?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "Broken"}],
            "Default": "Shard",
        },
        "Broken": {"Type": "Fail", "Error": "ShardFailed", "Cause": "the shard could not be read"},
        "Shard": {"Type": "Pass", "End": True},
    },
}


def distributed_map(child: dict[str, Any], execution_type: str = "STANDARD", **fields: Any) -> dict[str, Any]:
    """A one-state machine: a Distributed Map over ``child``, with ``fields`` at the Map's level."""
    processor = {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": execution_type}, **child}
    return {
        "StartAt": "Shards",
        "States": {"Shards": {"Type": "Map", "End": True, "ItemProcessor": processor, **fields}},
    }


@dataclass
class Ended:
    status: str
    output: Any
    error: str | None
    cause: str | None
    events: list[str]


@dataclass
class StepFunctions:
    sfn: Any
    s3: Any

    def run(self, definition: dict[str, Any], execution_input: dict[str, Any] | None = None) -> Ended:
        """Create the state machine, start it and wait for it to end."""
        name = f"m{time.monotonic_ns()}"
        arn = self.sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)
        execution = self.sfn.start_execution(
            stateMachineArn=arn["stateMachineArn"], input=json.dumps(execution_input or {})
        )["executionArn"]
        deadline = time.monotonic() + LIVENESS_S
        described = self.sfn.describe_execution(executionArn=execution)
        # moto sets SUCCEEDED a moment before the execution's output (a copy of it: longer for a larger one).
        while not _ended(described) and time.monotonic() < deadline:
            time.sleep(0.05)
            described = self.sfn.describe_execution(executionArn=execution)
        history = self.sfn.get_execution_history(executionArn=execution)["events"]
        output = described.get("output")
        return Ended(
            described["status"],
            json.loads(output) if output else None,
            described.get("error"),
            described.get("cause"),
            [e["type"] for e in history],
        )


def _ended(described: dict[str, Any]) -> bool:
    return described["status"] != "RUNNING" and (described["status"] != "SUCCEEDED" or "output" in described)


@pytest.fixture
def aws() -> Iterator[StepFunctions]:
    with mock_aws():
        seams.install(None)
        seams.execute_state_machines(True)  # before any machine exists: moto keeps it in its ASL engine then
        try:
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(Bucket=BUCKET)
            yield StepFunctions(boto3.client("stepfunctions", region_name=REGION), s3)
        finally:
            seams.execute_state_machines(False)
            seams.uninstall()


def test_given_1500_objects_under_a_prefix_when_the_map_lists_them_then_every_object_reaches_a_child(aws):
    """moto read one ListObjectsV2 page (1,000 objects); AWS lists them all, in its item shape."""
    keys = [f"snapshot/part-{i:05d}.parquet" for i in range(1500)]
    objects = {key: b"x" * (i % 7) for i, key in enumerate(keys)}
    seams.put_objects(ACCOUNT, BUCKET, {**objects, "elsewhere/part-0.parquet": b"x"})  # 1,501 PutObjects took 9 s
    definition = distributed_map(
        PASS_CHILD,
        ItemReader={
            "Resource": "arn:aws:states:::s3:listObjectsV2",
            "Parameters": {"Bucket": BUCKET, "Prefix": "snapshot/"},
        },
        ItemSelector={"key.$": "$$.Map.Item.Value.Key", "size.$": "$$.Map.Item.Value.Size"},
    )

    ended = aws.run(definition)

    assert ended.status == "SUCCEEDED", (ended.error, ended.cause)
    assert sorted(child["key"] for child in ended.output) == keys
    assert all(child["size"] == len(objects[child["key"]]) for child in ended.output)


def test_given_an_item_batcher_then_each_child_receives_a_batch_of_items_with_the_batch_input(aws):
    """moto rejected ItemBatcher at CreateStateMachine."""
    definition = distributed_map(
        PASS_CHILD,
        ItemsPath="$.shards",
        ItemBatcher={"MaxItemsPerBatch": 4, "BatchInput": {"run.$": "$.run", "step": "statistics"}},
    )

    ended = aws.run(definition, {"run": "r-1", "shards": [{"key": f"k{i}"} for i in range(10)]})

    assert ended.status == "SUCCEEDED", (ended.error, ended.cause)
    batch_input = {"run": "r-1", "step": "statistics"}
    assert ended.output == [
        {"Items": [{"key": f"k{i}"} for i in range(0, 4)], "BatchInput": batch_input},
        {"Items": [{"key": f"k{i}"} for i in range(4, 8)], "BatchInput": batch_input},
        {"Items": [{"key": f"k{i}"} for i in range(8, 10)], "BatchInput": batch_input},
    ]


def test_given_express_or_standard_children_then_the_map_is_created_and_runs_them(aws):
    """moto's grammar took only ``ExecutionType: STANDARD``; the CDK synthesizes EXPRESS for ``map_execution_type``."""
    outputs = {}
    for execution_type in ("EXPRESS", "STANDARD"):
        ended = aws.run(distributed_map(PASS_CHILD, execution_type, ItemsPath="$.shards"), {"shards": [1, 2, 3]})
        assert ended.status == "SUCCEEDED", (execution_type, ended.error, ended.cause)
        outputs[execution_type] = ended.output
    assert outputs == {"EXPRESS": [1, 2, 3], "STANDARD": [1, 2, 3]}


def test_given_a_failing_child_and_no_tolerance_then_the_map_fails_with_exceed_tolerated_failure_threshold(aws):
    """moto let the Map succeed, the failed child's result ``null``."""
    shards = [{"fail": False}, {"fail": True}, {"fail": False}]

    ended = aws.run(distributed_map(FAILING_CHILD, ItemsPath="$.shards"), {"shards": shards})

    assert (ended.status, ended.error) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    assert "MapRunFailed" in ended.events and "MapStateFailed" in ended.events


def test_given_a_map_that_catches_the_threshold_error_then_the_catcher_runs(aws):
    """The error is AWS's name, so a Catch on it (the merge step's "some shard failed" path) works."""
    definition = distributed_map(FAILING_CHILD, ItemsPath="$.shards")
    shards_state = definition["States"]["Shards"]
    del shards_state["End"]
    shards_state["Catch"] = [
        {"ErrorEquals": ["States.ExceedToleratedFailureThreshold"], "ResultPath": "$.failure", "Next": "Caught"}
    ]
    definition["States"]["Caught"] = {"Type": "Pass", "End": True}

    ended = aws.run(definition, {"shards": [{"fail": True}]})

    assert ended.status == "SUCCEEDED", (ended.error, ended.cause)
    assert ended.output["failure"]["Error"] == "States.ExceedToleratedFailureThreshold"


@pytest.mark.parametrize(
    ("tolerance", "failing", "status"),
    [
        ({"ToleratedFailurePercentage": 25}, 1, "SUCCEEDED"),  # 1 of 4 items: 25 %, not over it
        ({"ToleratedFailurePercentage": 25}, 2, "FAILED"),  # 50 %
        ({"ToleratedFailureCount": 1}, 1, "SUCCEEDED"),
        ({"ToleratedFailureCount": 1}, 2, "FAILED"),
        ({"ToleratedFailureCount": 5, "ToleratedFailurePercentage": 25}, 2, "FAILED"),  # over either fails it
    ],
)
def test_given_a_tolerated_failure_threshold_then_failures_within_it_succeed_and_beyond_it_fail(
    aws, tolerance, failing, status
):
    """moto rejected an integer ToleratedFailurePercentage (the CDK writes one) and ignored both fields."""
    shards = [{"fail": i < failing, "i": i} for i in range(4)]

    ended = aws.run(distributed_map(FAILING_CHILD, ItemsPath="$.shards", **tolerance), {"shards": shards})

    assert ended.status == status, (ended.error, ended.cause)
    if status == "FAILED":
        assert ended.error == "States.ExceedToleratedFailureThreshold"
    else:  # the failed child's execution result in its place, as AWS returns it; the others' outputs
        failed, *succeeded = ended.output
        assert (failed["Status"], failed["Error"], failed["Cause"]) == (
            "FAILED",
            "ShardFailed",
            "the shard could not be read",
        )
        assert json.loads(failed["Input"]) == shards[0]
        assert succeeded == shards[1:]


def test_given_a_result_writer_then_the_results_are_written_as_aws_lays_them_out_and_the_map_outputs_their_place(
    aws,
):
    """moto wrote a manifest listing no result files and no result files."""
    definition = distributed_map(
        FAILING_CHILD,
        ItemsPath="$.shards",
        ToleratedFailureCount=1,
        Label="Shards",
        ResultWriter={"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": BUCKET, "Prefix": "out"}},
    )
    shards = [{"fail": False, "i": 0}, {"fail": True, "i": 1}, {"fail": False, "i": 2}]

    ended = aws.run(definition, {"shards": shards})

    assert ended.status == "SUCCEEDED", (ended.error, ended.cause)
    details = ended.output["ResultWriterDetails"]
    run_id = ended.output["MapRunArn"].rsplit(":", 1)[-1]
    assert ":mapRun:" in ended.output["MapRunArn"]
    assert details == {"Bucket": BUCKET, "Key": f"out/{run_id}/manifest.json"}

    def read(key: str) -> Any:
        return json.loads(aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())

    manifest = read(details["Key"])
    assert manifest["DestinationBucket"] == BUCKET and manifest["MapRunArn"] == ended.output["MapRunArn"]
    files = manifest["ResultFiles"]
    assert [f["Key"] for f in files["SUCCEEDED"]] == [f"out/{run_id}/SUCCEEDED_0.json"]
    assert [f["Key"] for f in files["FAILED"]] == [f"out/{run_id}/FAILED_0.json"]
    assert files["PENDING"] == []
    for listed in files["SUCCEEDED"] + files["FAILED"]:
        assert aws.s3.head_object(Bucket=BUCKET, Key=listed["Key"])["ContentLength"] == listed["Size"]

    succeeded = read(files["SUCCEEDED"][0]["Key"])
    assert sorted(json.loads(r["Output"])["i"] for r in succeeded) == [0, 2]
    assert {r["Status"] for r in succeeded} == {"SUCCEEDED"}
    assert all(r["InputDetails"] == {"Included": True} and r["ExecutionArn"] and r["StartDate"] for r in succeeded)
    [failed] = read(files["FAILED"][0]["Key"])
    assert (failed["Status"], failed["Error"], json.loads(failed["Input"])) == ("FAILED", "ShardFailed", shards[1])
    assert "Output" not in failed


def test_given_max_concurrency_then_no_more_children_than_that_run_at_once(aws):
    """Four one-second children, two at a time, take two seconds at least (a lower bound: never flaky). The Map is
    the app's shape (EXPRESS, batched one item per child), which moto rejected at CreateStateMachine."""
    child = {"StartAt": "Work", "States": {"Work": {"Type": "Wait", "Seconds": 1, "End": True}}}
    definition = distributed_map(
        child, "EXPRESS", ItemsPath="$.shards", MaxConcurrency=2, ItemBatcher={"MaxItemsPerBatch": 1}
    )

    started = time.monotonic()
    ended = aws.run(definition, {"shards": [0, 1, 2, 3]})
    elapsed = time.monotonic() - started

    assert ended.status == "SUCCEEDED", (ended.error, ended.cause)
    assert ended.output == [{"Items": [i]} for i in range(4)]
    assert elapsed >= 2.0


def test_given_reader_and_writer_prefixes_from_the_state_input_then_both_resolve_against_it(aws):
    """The app's Map lists and writes under the run's own prefixes (``"Prefix.$"``). moto evaluated the
    ResultWriter's paths against the children's results, and the Map failed with States.Runtime; AWS evaluates
    them against the state's input."""
    for i in range(3):
        aws.s3.put_object(Bucket=BUCKET, Key=f"runs/r1/shards/part-{i}", Body=b"x")
    aws.s3.put_object(Bucket=BUCKET, Key="runs/r2/shards/part-0", Body=b"another run's")
    definition = distributed_map(
        PASS_CHILD,
        ItemReader={
            "Resource": "arn:aws:states:::s3:listObjectsV2",
            "Parameters": {"Bucket": BUCKET, "Prefix.$": "$.shards.prefix"},
        },
        ItemSelector={"run_id.$": "$.run_id", "shard.$": "$$.Map.Item.Value"},
        ResultWriter={
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": BUCKET, "Prefix.$": "$.shards.results"},
        },
        ResultPath="$.map",
    )

    ended = aws.run(definition, {"run_id": "r1", "shards": {"prefix": "runs/r1/shards/", "results": "runs/r1/map/"}})

    assert ended.status == "SUCCEEDED", (ended.error, ended.cause)
    key = ended.output["map"]["ResultWriterDetails"]["Key"]
    assert key.startswith("runs/r1/map/") and key.endswith("/manifest.json")
    manifest = json.loads(aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    (succeeded,) = manifest["ResultFiles"]["SUCCEEDED"]
    children = json.loads(aws.s3.get_object(Bucket=BUCKET, Key=succeeded["Key"])["Body"].read())
    outputs = [json.loads(c["Output"]) for c in children]
    assert sorted(o["shard"]["Key"] for o in outputs) == [f"runs/r1/shards/part-{i}" for i in range(3)]
    assert {o["run_id"] for o in outputs} == {"r1"}


@pytest.mark.parametrize(
    ("paths", "tolerance", "failing", "status"),
    [
        ({"ToleratedFailurePercentagePath": "$.tolerance.percentage"}, {"percentage": 25}, 1, "SUCCEEDED"),
        ({"ToleratedFailurePercentagePath": "$.tolerance.percentage"}, {"percentage": 25}, 2, "FAILED"),
        ({"ToleratedFailureCountPath": "$.tolerance.count"}, {"count": 2}, 2, "SUCCEEDED"),
        ({"ToleratedFailureCountPath": "$.tolerance.count"}, {"count": 0}, 1, "FAILED"),
    ],
)
def test_given_a_tolerated_failure_threshold_from_the_state_then_it_is_read_from_the_input(
    aws, paths, tolerance, failing, status
):
    """A model's tolerance travels in the state (batch scoring's ``scoring.tolerated_failed_shards``): the Map Run
    reads it from the input. (moto's parser logs that the paths "have no effect", yet its engine reads them; this
    holds the emulator's Map Run to it.)"""
    shards = [{"fail": i < failing, "i": i} for i in range(4)]

    ended = aws.run(
        distributed_map(FAILING_CHILD, ItemsPath="$.shards", **paths), {"shards": shards, "tolerance": tolerance}
    )

    assert ended.status == status, (ended.error, ended.cause)
    if status == "FAILED":
        assert ended.error == "States.ExceedToleratedFailureThreshold"
