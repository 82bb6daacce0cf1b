"""A Step Functions Distributed Map as AWS runs it, where moto's engine does not (#29).

moto's ASL grammar rejects parts of the Distributed Map the CDK synthesizes (``ItemBatcher``, ``ExecutionType:
EXPRESS``, an integer ``ToleratedFailurePercentage``, a ``ResultWriter``'s ``WriterConfig``), and its engine ignores
the tolerated failure threshold and writes an empty ``ResultWriter`` manifest. This module holds what AWS does
instead, as pure functions over JSON: :func:`split_definition` hands moto a definition its grammar accepts and keeps
the rest aside, and :func:`batches`, :func:`tolerance_exceeded` and :func:`result_files` are the Map Run's semantics.
:mod:`mlops.local.seams` wires them into moto's engine (the one place that touches moto's internals).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

# MaxConcurrency 0 means "as many as AWS allows" (10,000 child executions); the emulator runs that many threads at
# most, so that a Map over thousands of items does not start thousands of threads (or execution environments).
UNBOUNDED_CONCURRENCY = 16
EXCEEDED_ERROR = "States.ExceedToleratedFailureThreshold"


@dataclass(frozen=True)
class MapSpec:
    """The parts of one Distributed Map state that moto's grammar does not take, kept aside from its definition."""

    execution_type: str = "STANDARD"
    item_batcher: dict[str, Any] | None = None
    writer_config: dict[str, Any] | None = None
    tolerates_count: bool = False  # ToleratedFailureCount(Path) is declared
    tolerates_percentage: bool = False  # ToleratedFailurePercentage(Path) is declared


MapPath = tuple[str | int, ...]  # state names from the top, with a Parallel branch's index between them


def split_definition(definition: dict[str, Any]) -> tuple[dict[str, Any], dict[MapPath, MapSpec]]:
    """``definition`` as moto's grammar accepts it, and what was taken out of each Distributed Map, by its path."""
    accepted = copy.deepcopy(definition)
    specs: dict[MapPath, MapSpec] = {}
    for path, state in _states(accepted.get("States", {}), ()):
        processor = state.get("ItemProcessor") or {}
        config = processor.get("ProcessorConfig") or {}
        if state.get("Type") != "Map" or config.get("Mode") != "DISTRIBUTED":
            continue
        execution_type = str(config.pop("ExecutionType", "STANDARD"))
        percentage = state.get("ToleratedFailurePercentage")
        if isinstance(percentage, int) and not isinstance(percentage, bool):
            state["ToleratedFailurePercentage"] = float(percentage)  # the grammar takes a decimal only
        writer = state.get("ResultWriter") or {}
        specs[path] = MapSpec(
            execution_type=execution_type,
            item_batcher=state.pop("ItemBatcher", None),
            writer_config=writer.pop("WriterConfig", None),
            tolerates_count=any(k in state for k in ("ToleratedFailureCount", "ToleratedFailureCountPath")),
            tolerates_percentage=any(
                k in state for k in ("ToleratedFailurePercentage", "ToleratedFailurePercentagePath")
            ),
        )
    return accepted, specs


def _states(states: dict[str, Any], path: MapPath) -> Iterator[tuple[MapPath, dict[str, Any]]]:
    """Every state of ``states`` and of the state machines nested in them (a Map's, a Parallel's branches)."""
    for name, state in states.items():
        here = (*path, name)
        yield here, state
        nested = state.get("ItemProcessor") or state.get("Iterator")
        if nested:
            yield from _states(nested.get("States", {}), here)
        for index, branch in enumerate(state.get("Branches") or []):
            yield from _states(branch.get("States", {}), (*here, index))


def resolve(template: Any, data: Any, extract: Callable[[str, Any], Any]) -> Any:
    """A JSONPath payload template (``BatchInput``): keys ending in ``.$`` take the value at their path in ``data``."""
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$") and isinstance(value, str):
                out[key[:-2]] = extract(value, data)
            else:
                out[key] = resolve(value, data, extract)
        return out
    if isinstance(template, list):
        return [resolve(v, data, extract) for v in template]
    return template


def batches(
    items: list[Any], *, max_items: int | None, max_bytes: int | None, batch_input: Any = None
) -> list[dict[str, Any]]:
    """The inputs of the child executions when an ``ItemBatcher`` is set: ``{"Items": [...], "BatchInput": ...}``,
    each with at most ``max_items`` items and at most ``max_bytes`` bytes of JSON (an item larger than that alone)."""

    def child(chunk: list[Any]) -> dict[str, Any]:
        return {"Items": chunk} if batch_input is None else {"Items": chunk, "BatchInput": batch_input}

    out: list[dict[str, Any]] = []
    chunk: list[Any] = []
    for item in items:
        grown = [*chunk, item]
        too_many = max_items is not None and len(grown) > max_items
        too_big = max_bytes is not None and len(json.dumps(child(grown)).encode()) > max_bytes
        if chunk and (too_many or too_big):
            out.append(child(chunk))
            grown = [item]
        chunk = grown
    if chunk:
        out.append(child(chunk))
    return out


def tolerance_exceeded(failed: int, total: int, *, count: int, percentage: float, spec: MapSpec) -> bool:
    """AWS's tolerated failure threshold: with neither field declared any failure fails the Map Run; with one or both,
    exceeding either fails it (failed items over all items, for the percentage)."""
    if failed == 0:
        return False
    if not (spec.tolerates_count or spec.tolerates_percentage):
        return True
    over_count = spec.tolerates_count and failed > count
    over_percentage = spec.tolerates_percentage and total > 0 and failed * 100.0 / total > percentage
    return bool(over_count or over_percentage)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class ChildRun:
    """One child workflow execution of a Map Run."""

    index: int
    input: Any
    items: int  # the items it processed (a batch's several)
    started: dt.datetime = field(default_factory=now)
    stopped: dt.datetime | None = None
    output: Any = None
    error: str | None = None
    cause: str | None = None
    name: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass
class MapRun:
    """What a Map Run did, for its output and its ResultWriter."""

    map_run_arn: str
    spec: MapSpec
    children: list[ChildRun]

    def child_state_machine_arn(self) -> str:
        """``arn:…:stateMachine:<machine>/<label>``: the Map Run's own state machine, as AWS names it."""
        machine, _, _ = self.map_run_arn.replace(":mapRun:", ":stateMachine:").rpartition(":")
        return machine

    def child_execution_arn(self, child: ChildRun) -> str:
        machine, _, run_id = self.map_run_arn.rpartition(":")
        if self.spec.execution_type == "EXPRESS":
            return f"{machine.replace(':mapRun:', ':express:')}:{run_id}:{child.name}"
        return f"{machine.replace(':mapRun:', ':execution:')}:{child.name}"

    def record(self, child: ChildRun) -> dict[str, Any]:
        """The child's execution result as AWS writes it to a ResultWriter file (``Transformation: NONE``)."""
        status = "FAILED" if child.failed else "SUCCEEDED"
        out: dict[str, Any] = {
            "ExecutionArn": self.child_execution_arn(child),
            "Input": json.dumps(child.input, separators=(",", ":")),
            "InputDetails": {"Included": True},
            "Name": child.name,
        }
        if child.failed:
            out["Error"] = child.error
            if child.cause is not None:
                out["Cause"] = child.cause
        else:
            out["Output"] = json.dumps(child.output, separators=(",", ":"))
            out["OutputDetails"] = {"Included": True}
        if self.spec.execution_type == "STANDARD":
            out["RedriveCount"] = 0
            out["RedriveStatus"] = "REDRIVABLE" if child.failed else "NOT_REDRIVABLE"
            if not child.failed:
                out["RedriveStatusReason"] = "Execution is SUCCEEDED and cannot be redriven"
        out["StartDate"] = _iso(child.started)
        out["StateMachineArn"] = self.child_state_machine_arn()
        out["Status"] = status
        out["StopDate"] = _iso(child.stopped or child.started)
        return out

    def results(self) -> list[Any]:
        """The Map's output without a ResultWriter: each child's output, in order; a failed (tolerated) child's
        execution result unchanged, as AWS returns it."""
        return [self.record(c) if c.failed else c.output for c in self.children]


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def result_files(run: MapRun, bucket: str, prefix: str) -> tuple[dict[str, bytes], dict[str, str]]:
    """The objects a ResultWriter writes under ``<prefix>/<map run id>/``: ``SUCCEEDED_0.json`` and ``FAILED_0.json``
    (when any child ended so) and ``manifest.json`` naming them; and the Map's output's ``ResultWriterDetails``."""
    run_id = run.map_run_arn.rsplit(":", 1)[-1]
    folder = f"{prefix.rstrip('/')}/{run_id}/" if prefix else f"{run_id}/"
    jsonl = (run.spec.writer_config or {}).get("OutputType") == "JSONL"
    files: dict[str, bytes] = {}
    manifest_files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    for status in ("SUCCEEDED", "FAILED"):
        records = [run.record(c) for c in run.children if (status == "FAILED") == c.failed]
        if not records:
            continue
        key = f"{folder}{status}_0.json{'l' if jsonl else ''}"
        body = ("\n".join(json.dumps(r) for r in records) if jsonl else json.dumps(records)).encode()
        files[key] = body
        manifest_files[status].append({"Key": key, "Size": len(body)})
    manifest = {"DestinationBucket": bucket, "MapRunArn": run.map_run_arn, "ResultFiles": manifest_files}
    manifest_key = f"{folder}manifest.json"
    files[manifest_key] = json.dumps(manifest).encode()
    return files, {"Bucket": bucket, "Key": manifest_key}


def s3_item(listed: dict[str, Any]) -> dict[str, Any]:
    """One object of an ``s3:listObjectsV2`` ItemReader as a child execution receives it (AWS's field names, the
    time as epoch seconds) from ``ListObjectsV2``'s ``Contents`` entry."""
    modified = listed.get("LastModified")
    return {
        "Etag": listed.get("ETag"),
        "Key": listed["Key"],
        "LastModified": int(modified.timestamp()) if isinstance(modified, dt.datetime) else modified,
        "Size": listed.get("Size"),
        "StorageClass": listed.get("StorageClass", "STANDARD"),
    }
