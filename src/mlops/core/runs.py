"""Run records: one per pipeline run, with per-step status, timings, outputs and anomalies.

Every step function is wrapped by :func:`pipeline_step`, so the record, the lineage execution and
the anomaly report are written in one place whatever runs the step (Lambda, the CLI, a test).
"""

from __future__ import annotations

import functools
import json
import re
import time
import traceback
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from mlops import __version__
from mlops.core.artifact_io import put_json
from mlops.core.clock import utcnow_iso
from mlops.core.config import ProjectConfig
from mlops.core.context import StepContext, Stores
from mlops.core.errors import DataValidationError
from mlops.core.facts import RunStateChange, fact_id
from mlops.core.results import StepResult

P = ParamSpec("P")
R = TypeVar("R", bound="StepResult")

RUNNING, SUCCEEDED, FAILED, REJECTED, WAITING = "RUNNING", "SUCCEEDED", "FAILED", "REJECTED", "WAITING_APPROVAL"
MAX_ANOMALIES_IN_RECORD = 50


def start_run(
    stores: Stores,
    config: ProjectConfig,
    run_id: str,
    trigger: dict[str, Any],
    code_version: str | None = None,
    source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    record = {
        "model": config.name,
        "run_id": run_id,
        "status": RUNNING,
        "trigger": trigger,
        **({"source": source} if source else {}),
        "config_hash": config.config_hash(),
        "code_version": code_version or __version__,
        "started_at": utcnow_iso(),
    }
    stores.meta.put_run(record)
    return record


def finish_run(stores: Stores, model: str, run_id: str, status: str, **fields: Any) -> dict[str, Any]:
    record = stores.meta.get_run(model, run_id)
    if record is None:
        raise KeyError(f"no run {run_id} for model {model}")
    started = record.get("started_at")
    update = {"status": status, "finished_at": utcnow_iso(), **fields}
    if started:
        from datetime import datetime

        t0 = datetime.fromisoformat(started.replace("Z", "+00:00"))
        t1 = datetime.fromisoformat(update["finished_at"].replace("Z", "+00:00"))
        update["duration_s"] = round((t1 - t0).total_seconds(), 3)
    stores.meta.update_run(model, run_id, update)
    return {**record, **update}


def _input_refs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The artifacts a step read, for lineage: its refs, and those of an earlier step's record it was given."""
    refs: dict[str, Any] = {k: v for k, v in kwargs.items() if isinstance(v, dict) and "sha256" in v}
    for value in kwargs.values():
        if isinstance(value, StepResult):
            for name, ref in value.artifacts().items():
                refs.setdefault(name, ref)
    return refs


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    """What goes into the run record: URIs and scalars, not bulky payloads."""
    out: dict[str, Any] = {}
    for k, v in result.items():
        if isinstance(v, str | int | float | bool) or v is None:
            out[k] = v
        elif isinstance(v, dict) and "uri" in v:
            out[k] = v["uri"]
        elif isinstance(v, dict) and all(isinstance(x, int | float | str | bool) for x in v.values()):
            out[k] = v
    return out


def pipeline_step(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Record status, timing, outputs and lineage of a step; on failure record the error (and anomalies)."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            ctx = args[0]
            assert isinstance(ctx, StepContext)
            meta = ctx.stores.meta
            started = utcnow_iso()
            t0 = time.perf_counter()
            meta.record_step(ctx.model, ctx.run_id, name, {"status": RUNNING, "started_at": started})
            try:
                result = fn(*args, **kwargs)
            except Exception as err:
                info: dict[str, Any] = {
                    "status": FAILED,
                    "started_at": started,
                    "duration_s": round(time.perf_counter() - t0, 3),
                    "error": {"type": type(err).__name__, "message": str(err)[:1000]},
                }
                if isinstance(err, DataValidationError):
                    ref = put_json(
                        ctx.stores.artifacts,
                        ctx.key(name, "anomalies.json"),
                        {"passed": False, "anomalies": err.anomalies},
                    )
                    err.report_uri = ref.uri
                    info["anomalies_uri"] = ref.uri
                    meta.update_run(ctx.model, ctx.run_id, {"anomalies": err.anomalies[:MAX_ANOMALIES_IN_RECORD]})
                else:
                    info["error"]["trace"] = traceback.format_exc(limit=3)[-1500:]
                meta.record_step(ctx.model, ctx.run_id, name, info)
                raise
            duration = round(time.perf_counter() - t0, 3)
            meta.record_step(
                ctx.model,
                ctx.run_id,
                name,
                {
                    "status": SUCCEEDED,
                    "started_at": started,
                    "duration_s": duration,
                    "outputs": _summary(result.as_state()),
                },
            )
            meta.put_execution(
                ctx.run_id,
                name,
                {
                    "step": name,
                    "model": ctx.model,
                    "started_at": started,
                    "duration_s": duration,
                    "inputs": _input_refs(kwargs),
                    "outputs": result.artifacts(),
                },
            )
            return result

        return wrapper

    return decorate


def _error_of(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """Step Functions' Catch output ({"Error", "Cause"}; Cause is Lambda's JSON error) → {"type", "message"}."""
    if not raw:
        return None
    if "type" in raw:
        return raw
    cause = raw.get("Cause", "")
    message = cause
    try:
        parsed = json.loads(cause)
        message = parsed.get("errorMessage") or _stopped_task(parsed) or cause
    except (TypeError, ValueError, AttributeError):
        pass
    return {"type": raw.get("Error", "Error"), "message": str(message)[:1000]}


def _stopped_task(task: dict[str, Any]) -> str | None:
    """An ECS task that failed its ``runTask.sync`` state (its description is the cause): what stopped it, and how
    each container exited."""
    if "TaskArn" not in task:
        return None
    containers = "; ".join(
        f"container {c.get('Name')} exit code {c.get('ExitCode')}" + (f" ({c['Reason']})" if c.get("Reason") else "")
        for c in task.get("Containers") or []
    )
    stopped = task.get("StoppedReason") or task.get("StopCode")
    name = str(task["TaskArn"]).rsplit("/", 1)[-1]
    return f"the ECS task {name} stopped: {stopped}; {containers}; its log is in the training task's log group"


def finalize(
    stores: Stores,
    model: str,
    run_id: str,
    outcome: str,
    *,
    error: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
    config: ProjectConfig | None = None,
) -> dict[str, Any]:
    """Close a run (SUCCEEDED, FAILED or REJECTED) and release the model's run lock. A data failure quarantines
    the objects that carry it; with the ``config``, the run is then retried without them when the rest is enough
    (:func:`retry_without`)."""
    details = details or {}
    fields: dict[str, Any] = {}
    err = _error_of(error)
    if outcome == FAILED:
        run = stores.meta.get_run(model, run_id) or {}
        failed = [name for name, s in run.get("steps", {}).items() if s.get("status") in (FAILED, RUNNING)]
        vd = details.get("validate_data") or {}
        if err is None and vd.get("passed") is False:
            err = {"type": "DataValidationFailed", "message": f"{vd.get('num_errors')} data anomalies (see report)"}
        fields["error"] = {**(err or {"type": "Error", "message": "unknown"}), "step": failed[-1] if failed else None}
        if fields["error"]["type"] in DATA_FAILURES:
            fields["quarantined"] = quarantine_rejected(stores, model, run_id, run)
            retry = retry_without(stores, config, run_id, run, fields["quarantined"]) if config else None
            if retry:
                fields["retried_as"] = retry["execution_name"]
    elif outcome == REJECTED:
        vm = details.get("validate_model") or {}
        fields["reasons"] = vm.get("reasons", [])
    if details.get("evaluate", {}).get("metrics"):
        fields["metrics"] = details["evaluate"]["metrics"]
    if details.get("register", {}).get("version"):
        fields["model_version"] = details["register"]["version"]
    record = finish_run(stores, model, run_id, outcome, **fields)
    publish_run_state(stores, record)
    stores.meta.release_lock(model, run_id)
    return {"run_id": run_id, "status": outcome, "error": fields.get("error")}


def publish_run_state(stores: Stores, record: dict[str, Any]) -> None:
    """The run's state as an event (started, succeeded, failed, rejected, waiting for approval), once recorded."""
    from mlops.core.registry import site_page

    model, run_id, status = record["model"], record["run_id"], str(record["status"])
    error = record.get("error") or None
    stores.events.publish(
        RunStateChange(
            id=fact_id(model, run_id, "STARTED" if status == RUNNING else status),
            model=model,
            run_id=run_id,
            status="STARTED" if status == RUNNING else status,  # type: ignore[arg-type]
            trigger=(record.get("trigger") or {}).get("reason"),
            version=record.get("model_version"),
            error=f"{error.get('type')}: {error.get('message', '')}"[:300] if error else None,
            reasons=[r[:300] for r in record.get("reasons") or []] or None,
            at=str(record.get("finished_at") or record.get("started_at") or utcnow_iso()),
            report=site_page(stores, model, f"runs/{run_id}.html"),
        )
    )


def safe_name(text: str, limit: int = 80) -> str:
    """An execution name Step Functions accepts, from any text."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)[:limit]


DATA_FAILURES = {"DataValidationFailed", "DataValidationError"}
# What a file is to blame for, and is set aside for: a failing rate or value it carries, a column it lacks or holds
# in the wrong type. Not drift (the world moved, not the file) nor what the batch as a whole lacks (rows, classes).
QUARANTINED_CODES = frozenset(
    {
        "EMPTY_FILE",
        "UNPARSEABLE_FILE",
        "WRONG_DELIMITER",
        "DUPLICATE_COLUMN",
        "MISSING_COLUMN",
        "WRONG_DTYPE",
        "NON_FINITE",
        "ALL_MISSING",
        "MISSING_RATE_SPIKE",
        "OUT_OF_RANGE",
        "UNSEEN_CATEGORY",
        "LABEL_SET_CHANGED",
    }
)


def quarantine_rejected(stores: Stores, model: str, run_id: str, run: dict[str, Any]) -> list[str]:
    """Set aside the objects a failed run rejected, so prefix and scheduled runs skip them until replaced: every
    object an error names (``object``: it could not be used on its own; ``objects``: it carries a failing check of
    the batch), or the run's only object. Returns every object the run quarantined, those extract set aside
    included. (A failure no object carries — too few rows, one class — quarantines nothing.)"""
    objects = run.get("objects") or []
    errors = [a for a in run.get("anomalies") or [] if a.get("severity") == "error"]
    reasons: dict[str, set[str]] = {}
    for a in errors:
        blamed = [a["object"]] if a.get("object") else a.get("objects") or [] if a["code"] in QUARANTINED_CODES else []
        for key in blamed:
            reasons.setdefault(key, set()).add(a["code"])
    rejected = [o for o in objects if o["key"] in reasons]
    if not rejected and len(objects) == 1:
        rejected = objects
        reasons[objects[0]["key"]] = {a["code"] for a in errors}
    for obj in rejected:
        reason = ", ".join(sorted(reasons[obj["key"]])) or "data validation"
        stores.meta.quarantine(model, {**obj, "run_id": run_id, "reason": reason, "at": utcnow_iso()})
    return list(dict.fromkeys([*(run.get("quarantined") or []), *(o["key"] for o in rejected)]))


def retry_without(
    stores: Stores, config: ProjectConfig, run_id: str, run: dict[str, Any], quarantined: list[str]
) -> dict[str, Any] | None:
    """A failed run whose failure is carried by some of its objects goes on without them: the same source minus
    the quarantined objects, deferred behind this run (the trigger starts it when the execution ends) — when what
    is left is enough (``validation.max_rejected_object_share``). Each retry has fewer objects: it ends."""
    objects = [o for o in run.get("objects") or [] if o.get("key")]
    left = [o for o in objects if o["key"] not in set(quarantined)]
    blamed = len(objects) - len(left)
    if not blamed or not left or blamed > config.validation.max_rejected_object_share * len(objects):
        return None
    source = dict(run.get("source") or {})
    if not source:
        return None
    if source.get("keys"):
        source["keys"] = [o["key"] for o in left]
    name = safe_name(f"{run_id}-retry")
    record = {
        "at": utcnow_iso(),
        "run_id": run_id,
        "reason": "retry",
        "name": name,
        "source": source,
        "detail": {"retry_of": run_id, "without": [k for k in quarantined if k in {o["key"] for o in objects}]},
    }
    stores.meta.add_pending(config.name, record)
    return {"execution_name": name, "objects": len(left)}


def await_approval(stores: Stores, model: str, run_id: str, version: int, token: str) -> dict[str, Any]:
    """Park the run until someone approves or rejects the version (``mlops models approve``)."""
    at = utcnow_iso()
    stores.meta.update_model_version(model, version, {"approval_token": token, "approval_requested_at": at})
    stores.meta.update_run(model, run_id, {"status": WAITING, "approval": {"version": version, "requested_at": at}})
    run = stores.meta.get_run(model, run_id) or {}
    publish_run_state(stores, {**run, "model": model, "run_id": run_id, "status": WAITING, "model_version": version})
    return {"run_id": run_id, "version": version, "status": WAITING}
