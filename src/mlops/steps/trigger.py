"""D5: every way a run starts goes through here, once.

* an EventBridge "Object Created" event from the landing bucket,
* an EventBridge "Scheduled Event",
* an on-demand request (``{"action": "run", "reason": ..., "key": ...}`` from the CLI or a console),
* a CloudWatch "Alarm State Change" into ALARM (the drift or quality alarm), at most one run per
  ``monitoring.cooldown_hours`` (a lease in the runs table, taken after de-duplication); with
  ``monitoring.train_on_feedback`` the run also trains on served traffic that has received labels since the
  champion was registered,
* a Step Functions "Execution Status Change" of our own state machine: the run finished, so the lock is
  released and triggers deferred meanwhile are coalesced into one new run.

Idempotency: the execution name derives from what caused the run (object key + ETag, the schedule's
time, the alarm's state-change time), and a conditional write claims it before anything starts, so
the same event delivered three times starts one run. A claim whose start fails (a throttled
``StartExecution``) is released before the error goes back to Lambda, so the retry starts the run; and
Step Functions itself refuses a second execution of one name, the last word on duplicates.

Concurrency: one run per model at a time, guarded by a lock item that outlives every path through the
state machine (:data:`mlops.core.constants.RUN_LOCK_SECONDS`, from the same budget as its timeout). A lock
whose execution has ended without releasing it (a lost status-change event) is taken over, after
asking Step Functions. A trigger that finds the lock taken is recorded as pending; when the run ends,
every pending trigger is coalesced into one run over the union of their objects.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops.core.clock import new_run_id, now_s, utcnow_iso
from mlops.core.config import ModelSet, ProjectConfig
from mlops.core.constants import (
    CHAMPION,
    METRIC_CHALLENGER_DISAGREEMENT,
    METRIC_CHALLENGER_ERRORS,
    METRIC_CHALLENGER_LATENCY_RATIO,
    METRIC_CHALLENGER_QUALITY_SHORTFALL,
    RUN_LOCK_SECONDS,
    WARM_TRIALS_FIELD,
)
from mlops.core.context import Stores
from mlops.core.events import (
    EVENTBRIDGE_TIME,
    AlarmStateChange,
    ExecutionStatusChange,
    RunRequest,
    S3Upload,
    ScheduledEvent,
    TriggerEvent,
    parse_trigger_event,
)
from mlops.core.ports import TERMINAL_STATUSES, ExecutionExistsError, Executions
from mlops.core.runs import FAILED, RUNNING, finish_run, publish_run_state, safe_name, start_run
from mlops.ml.search import expand_trials

# A lock whose execution never started (the trigger died between lock and start) is stale after this;
# the trigger's own timeout is 30 s.
UNSTARTED_LOCK_GRACE_S = 15 * 60
COOLDOWN = "COOLDOWN#alarm"


@dataclass(frozen=True)
class TriggerRequest:
    reason: str  # s3_upload | schedule | manual | alarm | coalesced
    name: str  # the execution name: the idempotency key
    source: dict[str, Any]
    detail: dict[str, Any] = field(default_factory=dict)


def _parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]


def why_no_run(config: ProjectConfig, key: str) -> str | None:
    """Why an upload at ``key`` would start no run (None: it would)."""
    if not key.startswith(config.data.prefix):
        return f"it is outside the model's data prefix '{config.data.prefix}'"
    if not key.lower().endswith(config.data.suffixes):
        return f"its suffix is not one of data.suffixes ({', '.join(config.data.suffixes)})"
    return None


def request_for(event: TriggerEvent, config: ProjectConfig, landing_bucket: str) -> TriggerRequest | None:
    """The run an event asks for, or None when it asks for none (a key outside the prefix, say)."""
    prefix_source = {"bucket": config.data.bucket or landing_bucket, "prefix": config.data.prefix}
    if isinstance(event, S3Upload):
        bucket, obj = event.detail.bucket.name, event.detail.object
        if why_no_run(config, obj.key) is not None:
            return None
        etag = obj.etag.strip('"')
        src: dict[str, Any] = (
            {"bucket": bucket, "keys": [obj.key]} if config.data.scope == "object" else {**prefix_source}
        )
        size = int(obj.size) if obj.size is not None else None
        return TriggerRequest(
            "s3_upload",
            f"s3-{_digest(bucket, obj.key, etag, str(obj.version_id or ''))}",
            src,
            {"bucket": bucket, "key": obj.key, "etag": etag, "version_id": obj.version_id, "size": size},
        )
    if isinstance(event, ScheduledEvent):
        return TriggerRequest("schedule", safe_name(f"schedule-{event.when}"), prefix_source, {"time": event.when})
    if isinstance(event, AlarmStateChange):
        state = event.detail.state
        if state.value != "ALARM" or not config.monitoring.retrain_on_alarm:
            return None
        when = state.timestamp or event.time.strftime(EVENTBRIDGE_TIME)
        alarm = event.detail.alarm_name
        src = {**prefix_source, "feedback": {"until": when}} if config.monitoring.train_on_feedback else prefix_source
        detail_out = {"alarm": alarm, "time": when, "alarm_reason": state.reason}
        return TriggerRequest("alarm", f"alarm-{_digest(alarm, when)}", src, detail_out)
    if isinstance(event, RunRequest):
        bucket = event.bucket or prefix_source["bucket"]
        src = {"bucket": bucket, "keys": [event.key]} if event.key else prefix_source
        token = event.idempotency_key or uuid.uuid4().hex
        return TriggerRequest(
            "manual",
            safe_name(f"manual-{token}"),
            src,
            {"requested_by": event.requested_by, "note": event.reason, "key": event.key},
        )
    return None  # an execution's status change asks for no run (it releases the lock: Trigger.handle)


def target_model(event: TriggerEvent, models: ModelSet, landing_bucket: str) -> tuple[ProjectConfig | None, str]:
    """Which model an event concerns: an upload by the data prefix it falls under, a schedule by the model its
    rule names (``detail.model``), an alarm by its metric's ``Model`` dimension, a finished execution by its
    input, an on-demand request by ``model`` — and the only model when a deployment has one."""
    if isinstance(event, S3Upload):
        bucket, key = event.detail.bucket.name, event.detail.object.key
        config = models.for_object(bucket, key, landing_bucket)
        if config is None:
            return None, f"s3://{bucket}/{key} is under no model's data prefix"
        return config, ""
    name: str | None
    if isinstance(event, ExecutionStatusChange):
        name = event.detail.input_field("model")
        if name is None and len(models) > 1:
            return None, "the execution's input names no model"
    elif isinstance(event, AlarmStateChange | ScheduledEvent):
        name = event.detail.model
    else:
        name = event.model
    return models.choose(name), ""


def dispatch(
    event: dict[str, Any],
    models: ModelSet,
    stores: Stores,
    executions: Executions,
    clock: Callable[[], float] | None = None,
    scoring_jobs: Executions | None = None,
) -> dict[str, Any]:
    """Route an event to its model's trigger (locks, claims and cooldowns are all per model); an upload under a
    model's scoring prefix starts a batch scoring job on ``scoring_jobs`` instead (:mod:`mlops.steps.score`)."""
    parsed = parse_trigger_event(event)
    if isinstance(parsed, S3Upload):
        bucket, obj = parsed.detail.bucket.name, parsed.detail.object
        scoring = models.for_scoring(bucket, obj.key, stores.landing_bucket or "")
        if scoring is not None:  # a file to score, not training data: a batch scoring job
            from mlops.steps.score import start_job

            if scoring_jobs is None:
                raise RuntimeError("an upload to score, but this trigger has no scoring state machine")
            etag = obj.etag.strip('"')
            return {
                "model": scoring.name,
                **start_job(stores, scoring, scoring_jobs, bucket=bucket, key=obj.key, etag=etag),
            }
    config, why = target_model(parsed, models, stores.landing_bucket or "")
    if config is None:
        return {"status": "ignored", "reason": why}
    if isinstance(parsed, AlarmStateChange) and challenger_alarm(parsed):
        return {"model": config.name, **withdraw_on_alarm(stores, config.name, parsed)}
    return {"model": config.name, **Trigger(config, stores, executions, clock).handle(parsed)}


CHALLENGER_METRICS = (
    METRIC_CHALLENGER_ERRORS,
    METRIC_CHALLENGER_DISAGREEMENT,
    METRIC_CHALLENGER_QUALITY_SHORTFALL,
    METRIC_CHALLENGER_LATENCY_RATIO,
)


def challenger_alarm(event: AlarmStateChange) -> bool:
    """A state change of a challenger's alarm (its metric is one of :data:`CHALLENGER_METRICS`)."""
    return bool(event.detail.metric_names & set(CHALLENGER_METRICS))


def withdraw_on_alarm(stores: Stores, model: str, event: AlarmStateChange) -> dict[str, Any]:
    """C4: a challenger's alarm into ALARM withdraws it, without a person; the history names the alarm."""
    from mlops.core.errors import RegistryError
    from mlops.core.registry import withdraw_challenger

    alarm, state = event.detail.alarm_name, event.detail.state
    if state.value != "ALARM":
        return {"status": "ignored", "reason": f"alarm {alarm} is {state.value}"}
    reason = f"alarm {alarm}: {state.reason or ''}".strip()
    try:
        withdrawn = withdraw_challenger(stores, model, reason=reason[:500], actor="alarm")
    except RegistryError as err:  # already withdrawn (a redelivered event, or by hand)
        return {"status": "ignored", "reason": str(err)}
    return {"status": "withdrawn", "version": withdrawn["version"], "reason": reason}


class Trigger:
    """Starts the state machine for one model, at most one run at a time."""

    def __init__(
        self,
        config: ProjectConfig,
        stores: Stores,
        executions: Executions,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.config, self.stores, self.executions = config, stores, executions
        # mlops.core.clock: in AWS the wall clock; offline the emulator's (`tick --advance` expires a cooldown)
        self.clock = clock or now_s

    @property
    def model(self) -> str:
        return self.config.name

    def handle(self, event: dict[str, Any] | TriggerEvent) -> dict[str, Any]:
        parsed = parse_trigger_event(event) if isinstance(event, dict) else event
        if isinstance(parsed, ExecutionStatusChange):
            return self.on_execution_finished(parsed)
        req = request_for(parsed, self.config, self.stores.landing_bucket or "")
        if req is None:
            return {"status": "ignored", "reason": "event outside the configured data prefix or state"}
        return self.request(req)

    def request(self, req: TriggerRequest) -> dict[str, Any]:
        run_id = new_run_id()
        claim = f"TRIGGER#{req.name}"
        existing = self.stores.meta.claim(
            self.model, claim, {"run_id": run_id, "at": utcnow_iso(), "reason": req.reason}
        )
        if existing is not None:
            return {"status": "duplicate", "run_id": existing.get("run_id"), "execution_name": req.name}
        if req.reason == "alarm":
            cooling = self._cooldown(run_id, req)
            if cooling is not None:
                self.stores.meta.release_claim(self.model, claim, run_id)
                return cooling
            req = self._with_feedback_since(req)
        try:
            holder = self._acquire(run_id, req)
            if holder is not None:
                self.stores.meta.add_pending(self.model, {"at": utcnow_iso(), "run_id": run_id, **asdict(req)})
                return {
                    "status": "deferred",
                    "run_id": run_id,
                    "behind": holder.get("run_id"),
                    "execution_name": req.name,
                }
            return self._start(run_id, req)
        except Exception:
            # Nothing started: give the claim back, so Lambda's retry of this event is not a "duplicate".
            self.stores.meta.release_claim(self.model, claim, run_id)
            if req.reason == "alarm":
                self.stores.meta.release_lease(self.model, COOLDOWN, run_id)
            raise

    def _cooldown(self, run_id: str, req: TriggerRequest) -> dict[str, Any] | None:
        """Take the alarm cooldown; a result saying why no run starts if an alarm started one recently."""
        now = int(self.clock())
        seconds = int(self.config.monitoring.cooldown_hours * 3600)
        lease = {"run_id": run_id, "alarm": req.detail.get("alarm"), "acquired_at": now, "expires_at": now + seconds}
        holder = self.stores.meta.acquire_lease(self.model, COOLDOWN, lease, now)
        if holder is None:
            return None
        return {
            "status": "cooldown",
            "execution_name": req.name,
            "behind": holder.get("run_id"),
            "until": int(holder.get("expires_at", 0)),
            "reason": f"an alarm started run {holder.get('run_id')} less than monitoring.cooldown_hours="
            f"{self.config.monitoring.cooldown_hours:g} ago",
        }

    def _with_feedback_since(self, req: TriggerRequest) -> TriggerRequest:
        """Labelled traffic is new training data from the champion's registration on (no champion: none was
        served), and no further back than captured traffic is kept."""
        feedback = req.source.get("feedback")
        if not feedback:
            return req
        champion = self.stores.meta.get_alias(self.model, CHAMPION)
        record = self.stores.meta.get_model_version(self.model, champion) if champion is not None else None
        if not record or not record.get("created_at"):
            without = {k: v for k, v in req.source.items() if k != "feedback"}
            return TriggerRequest(req.reason, req.name, without, req.detail)
        until = _parse_time(str(feedback["until"]))
        kept = until - timedelta(days=self.config.monitoring.capture_retention_days)
        since = max(_parse_time(str(record["created_at"])), kept)
        source = {**req.source, "feedback": {**feedback, "since": since.isoformat().replace("+00:00", "Z")}}
        return TriggerRequest(req.reason, req.name, source, req.detail)

    def _acquire(self, run_id: str, req: TriggerRequest) -> dict[str, Any] | None:
        """Take the run lock; None if taken, else the holder. A holder whose execution has ended is evicted."""
        now = int(self.clock())
        lock = {
            "run_id": run_id,
            "execution_name": req.name,
            "execution_arn": self.executions.arn_of(req.name),
            "acquired_at": now,
            "expires_at": now + RUN_LOCK_SECONDS,
        }
        holder = self.stores.meta.acquire_lock(self.model, lock, now)
        if holder is not None and self._stale(holder, now):
            self.stores.meta.release_lock(self.model, str(holder.get("run_id")))
            holder = self.stores.meta.acquire_lock(self.model, lock, now)
        return holder

    def _stale(self, holder: dict[str, Any], now: int) -> bool:
        arn = holder.get("execution_arn")
        if not arn:
            return False
        status = self.executions.status(str(arn))
        if status is None:  # not started (yet): stale only once the starting trigger must have died
            return now - int(holder.get("acquired_at", now)) > UNSTARTED_LOCK_GRACE_S
        return status in TERMINAL_STATUSES

    def _start(self, run_id: str, req: TriggerRequest) -> dict[str, Any]:
        trigger = {"reason": req.reason, "execution_name": req.name, **req.detail}
        start_run(self.stores, self.config, run_id, trigger, source=req.source)
        payload = {
            "run_id": run_id,
            "model": self.model,
            "source": req.source,
            "trigger": trigger,
            WARM_TRIALS_FIELD: min(len(expand_trials(self.config)), self.config.training.max_concurrency),
        }
        try:
            arn = self.executions.start(req.name, payload)
        except ExecutionExistsError as exists:
            # Step Functions has run this name before: this trigger was already served.
            self._unstart(run_id)
            return {"status": "duplicate", "execution_arn": exists.execution_arn, "execution_name": req.name}
        except Exception:
            self._unstart(run_id)
            raise
        self.stores.meta.update_run(self.model, run_id, {"execution_arn": arn})
        publish_run_state(self.stores, {**(self.stores.meta.get_run(self.model, run_id) or {}), "status": RUNNING})
        return {"status": "started", "run_id": run_id, "execution_arn": arn, "execution_name": req.name}

    def _unstart(self, run_id: str) -> None:
        """Undo a start that did not happen: no lock held, no record of a run that never ran."""
        self.stores.meta.release_lock(self.model, run_id)
        self.stores.meta.delete_run(self.model, run_id)

    def on_execution_finished(self, event: ExecutionStatusChange) -> dict[str, Any]:
        detail = event.detail
        if detail.state_machine_arn != self.executions.state_machine_arn or detail.status == "RUNNING":
            return {"status": "ignored"}
        run_id = detail.input_field("run_id")
        released = bool(run_id) and self.stores.meta.release_lock(self.model, run_id)
        if run_id:
            run = self.stores.meta.get_run(self.model, run_id) or {}
            if run.get("status") in ("RUNNING", "WAITING_APPROVAL"):  # aborted or timed out: finalize never ran
                ended = finish_run(
                    self.stores,
                    self.model,
                    run_id,
                    FAILED,
                    error={"type": f"Execution{detail.status.title()}", "message": "execution ended"},
                )
                publish_run_state(self.stores, ended)
        return {"status": "released" if released else "not_held", "run_id": run_id, **self.start_pending()}

    def start_pending(self) -> dict[str, Any]:
        """Coalesce every deferred trigger into one run over the union of their objects."""
        pending = self.stores.meta.take_pending(self.model)
        if not pending:
            return {"pending": 0}
        req = coalesce(pending)
        try:
            # If another run slipped in first, request() defers the coalesced trigger to the next release.
            return {"pending": len(pending), "next": self.request(req)}
        except Exception:
            for record in pending:  # nothing is dropped: the retry of this event finds them again
                self.stores.meta.add_pending(self.model, record)
            raise


def coalesce(pending: list[dict[str, Any]]) -> TriggerRequest:
    """One request standing for every deferred trigger: all their object keys (or the prefix, if any
    of them asked for the prefix), every reason, and a name derived from theirs (a retry reuses it)."""
    sources = [p["source"] for p in pending]
    buckets = {s.get("bucket") for s in sources}
    if all(s.get("keys") for s in sources) and len(buckets) == 1:
        keys = list(dict.fromkeys(k for s in sources for k in s["keys"]))
        source: dict[str, Any] = {"bucket": sources[0]["bucket"], "keys": keys}
    else:
        source = next((s for s in reversed(sources) if not s.get("keys")), sources[-1])
        keys = []
    names = [str(p["name"]) for p in pending]
    detail: dict[str, Any] = {
        "coalesced": [
            {
                "reason": p["reason"],
                "name": p["name"],
                "key": (p.get("detail") or {}).get("key"),
                **{k: v for k, v in (p.get("detail") or {}).items() if k in ("retry_of", "without")},
            }
            for p in pending
        ],
        "keys": keys,
    }
    reason = "coalesced" if len(pending) > 1 else str(pending[0]["reason"])
    if len(pending) == 1:  # a retry says of which run, and without what
        detail.update({k: v for k, v in (pending[0].get("detail") or {}).items() if k in ("retry_of", "without")})
    return TriggerRequest(reason, safe_name(f"{names[-1][:50]}-c{_digest(*names)[:12]}"), source, detail)
