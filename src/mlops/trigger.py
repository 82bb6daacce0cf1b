"""D5: every way a run starts goes through here, once.

* an EventBridge "Object Created" event from the landing bucket,
* an EventBridge "Scheduled Event",
* an on-demand request (``{"action": "run", "reason": ..., "key": ...}`` from the CLI or a console),
* a CloudWatch "Alarm State Change" into ALARM (drift or quality alarms),
* a Step Functions "Execution Status Change" of our own state machine: the run finished, so the lock is
  released and triggers deferred meanwhile are coalesced into one new run.

Idempotency: the execution name derives from what caused the run (object key + ETag, the schedule's
time, the alarm's state-change time), and a conditional write claims it before anything starts, so
the same event delivered three times starts one run. Concurrency: one run per model at a time,
guarded by a lock item with an expiry; a trigger that finds the lock taken is recorded as pending.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops.clock import new_run_id, utcnow_iso
from mlops.config import ProjectConfig
from mlops.context import Stores
from mlops.runs import FAILED, finish_run, start_run

LOCK_SECONDS = 6 * 3600  # longer than the state machine's own timeout


@dataclass(frozen=True)
class TriggerRequest:
    reason: str  # s3_upload | schedule | manual | alarm | coalesced
    name: str  # the execution name: the idempotency key
    source: dict[str, Any]
    detail: dict[str, Any] = field(default_factory=dict)


def _safe(text: str, limit: int = 80) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)[:limit]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]


def parse(event: dict[str, Any], config: ProjectConfig, landing_bucket: str) -> TriggerRequest | None:
    """The run an event asks for, or None when it asks for none (a key outside the prefix, say)."""
    source, detail_type = event.get("source"), event.get("detail-type")
    detail = event.get("detail") or {}
    prefix_source = {"bucket": config.data.bucket or landing_bucket, "prefix": config.data.prefix}
    if source == "aws.s3" and detail_type == "Object Created":
        bucket, obj = detail["bucket"]["name"], detail["object"]
        key = obj["key"]
        if not key.startswith(config.data.prefix) or not key.lower().endswith(config.data.suffixes):
            return None
        etag = str(obj.get("etag", "")).strip('"')
        src = {"bucket": bucket, "keys": [key]} if config.data.scope == "object" else {**prefix_source}
        return TriggerRequest(
            "s3_upload",
            f"s3-{_digest(bucket, key, etag, str(obj.get('version-id', '')))}",
            src,
            {"bucket": bucket, "key": key, "etag": etag, "version_id": obj.get("version-id"), "size": obj.get("size")},
        )
    if source == "aws.events" and detail_type == "Scheduled Event":
        when = event.get("time", utcnow_iso())
        return TriggerRequest("schedule", _safe(f"schedule-{when}"), prefix_source, {"time": when})
    if source == "aws.cloudwatch" and detail_type == "CloudWatch Alarm State Change":
        state = detail.get("state", {})
        if state.get("value") != "ALARM":
            return None
        when = state.get("timestamp", event.get("time", utcnow_iso()))
        alarm = detail.get("alarmName", "alarm")
        return TriggerRequest("alarm", f"alarm-{_digest(alarm, when)}", prefix_source, {"alarm": alarm, "time": when})
    if event.get("action") == "run":
        key = event.get("key")
        bucket = event.get("bucket") or prefix_source["bucket"]
        src = {"bucket": bucket, "keys": [key]} if key else prefix_source
        token = event.get("idempotency_key") or uuid.uuid4().hex
        return TriggerRequest(
            "manual",
            _safe(f"manual-{token}"),
            src,
            {"requested_by": event.get("requested_by", "unknown"), "note": event.get("reason", ""), "key": key},
        )
    raise ValueError(
        "unrecognised trigger event: expected an S3 'Object Created', a 'Scheduled Event', an alarm state "
        "change, a Step Functions status change or {'action': 'run'}"
    )


def is_execution_status_change(event: dict[str, Any]) -> bool:
    return event.get("source") == "aws.states" and event.get("detail-type") == "Step Functions Execution Status Change"


class Trigger:
    """Starts the state machine for one model, at most one run at a time."""

    def __init__(self, config: ProjectConfig, stores: Stores, sfn: Any, state_machine_arn: str) -> None:
        self.config, self.stores, self.sfn, self.arn = config, stores, sfn, state_machine_arn

    @property
    def model(self) -> str:
        return self.config.name

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        if is_execution_status_change(event):
            return self.on_execution_finished(event)
        req = parse(event, self.config, self.stores.landing_bucket or "")
        if req is None:
            return {"status": "ignored", "reason": "event outside the configured data prefix or state"}
        return self.request(req)

    def request(self, req: TriggerRequest) -> dict[str, Any]:
        run_id = new_run_id()
        existing = self.stores.meta.claim(
            self.model, f"TRIGGER#{req.name}", {"run_id": run_id, "at": utcnow_iso(), "reason": req.reason}
        )
        if existing is not None:
            return {"status": "duplicate", "run_id": existing.get("run_id"), "execution_name": req.name}
        holder = self.stores.meta.acquire_lock(
            self.model,
            {"run_id": run_id, "execution_name": req.name, "expires_at": int(time.time()) + LOCK_SECONDS},
            int(time.time()),
        )
        if holder is not None:
            self.stores.meta.add_pending(self.model, {"at": utcnow_iso(), "run_id": run_id, **asdict(req)})
            return {"status": "deferred", "run_id": run_id, "behind": holder.get("run_id"), "execution_name": req.name}
        return self._start(run_id, req)

    def _start(self, run_id: str, req: TriggerRequest) -> dict[str, Any]:
        trigger = {"reason": req.reason, "execution_name": req.name, **req.detail}
        start_run(self.stores, self.config, run_id, trigger)
        payload = {
            "run_id": run_id,
            "model": self.model,
            "source": req.source,
            "trigger": trigger,
        }
        try:
            resp = self.sfn.start_execution(stateMachineArn=self.arn, name=req.name, input=json.dumps(payload))
        except Exception as err:
            self.stores.meta.release_lock(self.model, run_id)
            finish_run(self.stores, self.model, run_id, FAILED, error={"type": type(err).__name__, "message": str(err)})
            raise
        self.stores.meta.update_run(self.model, run_id, {"execution_arn": resp["executionArn"]})
        return {
            "status": "started",
            "run_id": run_id,
            "execution_arn": resp["executionArn"],
            "execution_name": req.name,
        }

    def on_execution_finished(self, event: dict[str, Any]) -> dict[str, Any]:
        detail = event.get("detail") or {}
        if detail.get("stateMachineArn") != self.arn or detail.get("status") == "RUNNING":
            return {"status": "ignored"}
        try:
            run_id = json.loads(detail.get("input") or "{}").get("run_id")
        except json.JSONDecodeError:
            run_id = None
        released = bool(run_id) and self.stores.meta.release_lock(self.model, run_id)
        if run_id:
            run = self.stores.meta.get_run(self.model, run_id) or {}
            if run.get("status") == "RUNNING":  # aborted or timed out: the finalize step never ran
                finish_run(
                    self.stores,
                    self.model,
                    run_id,
                    FAILED,
                    error={"type": f"Execution{str(detail.get('status', '')).title()}", "message": "execution ended"},
                )
        return {"status": "released" if released else "not_held", "run_id": run_id, **self.start_pending()}

    def start_pending(self) -> dict[str, Any]:
        """Coalesce every deferred trigger into one run: the latest one's data, all the reasons."""
        pending = self.stores.meta.take_pending(self.model)
        if not pending:
            return {"pending": 0}
        latest = pending[-1]
        req = TriggerRequest(
            "coalesced" if len(pending) > 1 else latest["reason"],
            _safe(f"{latest['name'][:60]}-c{len(pending)}"),
            latest["source"],
            {**latest.get("detail", {}), "coalesced": [{"reason": p["reason"], "name": p["name"]} for p in pending]},
        )
        # If another run slipped in first, request() defers the coalesced trigger to the next release.
        return {"pending": len(pending), "next": self.request(req)}
