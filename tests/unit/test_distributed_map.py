"""#29: the Distributed Map's semantics the emulator applies (mlops.local.distributed_map), without moto."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from mlops.local import distributed_map as dmap

pytestmark = pytest.mark.unit

PROCESSOR = {
    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
    "StartAt": "P",
    "States": {"P": {"Type": "Pass", "End": True}},
}


def test_given_a_distributed_map_in_a_parallel_branch_then_what_moto_rejects_is_kept_aside_by_its_path():
    inner = {
        "Type": "Map",
        "End": True,
        "ItemProcessor": PROCESSOR,
        "ItemBatcher": {"MaxItemsPerBatch": 2},
        "ToleratedFailurePercentage": 10,
        "ResultWriter": {"WriterConfig": {"OutputType": "JSONL"}, "Resource": "arn:aws:states:::s3:putObject"},
    }
    definition = {
        "StartAt": "Both",
        "States": {"Both": {"Type": "Parallel", "End": True, "Branches": [{"StartAt": "Shards", "States": {}}]}},
    }
    definition["States"]["Both"]["Branches"][0]["States"]["Shards"] = inner

    accepted, specs = dmap.split_definition(definition)

    shards = accepted["States"]["Both"]["Branches"][0]["States"]["Shards"]
    assert "ItemBatcher" not in shards and "ExecutionType" not in shards["ItemProcessor"]["ProcessorConfig"]
    assert shards["ToleratedFailurePercentage"] == 10.0 and isinstance(shards["ToleratedFailurePercentage"], float)
    assert shards["ResultWriter"] == {"Resource": "arn:aws:states:::s3:putObject"}
    assert specs == {
        ("Both", 0, "Shards"): dmap.MapSpec(
            execution_type="EXPRESS",
            item_batcher={"MaxItemsPerBatch": 2},
            writer_config={"OutputType": "JSONL"},
            tolerates_percentage=True,
        )
    }
    assert "ItemBatcher" in inner  # the definition given is left as it was


def test_given_max_input_bytes_per_batch_then_no_batch_is_larger_unless_one_item_alone_is():
    items = [{"key": "k" * 30}] * 5 + [{"key": "k" * 300}]
    batches = dmap.batches(items, max_items=None, max_bytes=130, batch_input={"run": "r"})
    assert [len(b["Items"]) for b in batches] == [2, 2, 1, 1]
    assert all(len(json.dumps(b).encode()) <= 130 for b in batches[:-1])
    assert [item for b in batches for item in b["Items"]] == items
    assert dmap.batches([1, 2, 3], max_items=2, max_bytes=None) == [{"Items": [1, 2]}, {"Items": [3]}]


@pytest.mark.parametrize(
    ("failed", "spec", "count", "percentage", "exceeded"),
    [
        (0, dmap.MapSpec(), 0, 0.0, False),
        (1, dmap.MapSpec(), 0, 0.0, True),  # nothing tolerated: any failure fails the Map Run
        (1, dmap.MapSpec(tolerates_percentage=True), 0, 10.0, False),  # 1 of 10 = 10 %, the default count unset
        (2, dmap.MapSpec(tolerates_percentage=True), 0, 10.0, True),
        (3, dmap.MapSpec(tolerates_count=True), 3, 0.0, False),
        (3, dmap.MapSpec(tolerates_count=True, tolerates_percentage=True), 5, 20.0, True),  # over either
    ],
)
def test_given_failed_items_then_the_tolerated_failure_threshold_is_aws_s(failed, spec, count, percentage, exceeded):
    assert dmap.tolerance_exceeded(failed, 10, count=count, percentage=percentage, spec=spec) is exceeded


def test_given_a_listed_object_then_a_child_receives_it_in_aws_item_shape():
    listed = {
        "Key": "snapshot/part-0.parquet",
        "ETag": '"abc"',
        "Size": 12,
        "StorageClass": "STANDARD",
        "LastModified": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    }
    assert dmap.s3_item(listed) == {
        "Etag": '"abc"',
        "Key": "snapshot/part-0.parquet",
        "LastModified": 1767323045,
        "Size": 12,
        "StorageClass": "STANDARD",
    }
