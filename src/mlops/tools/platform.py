"""One client for a deployed stack and for the offline emulator alike.

Resources are discovered from CloudFormation stack outputs (``Mlops-<env>-*``) with the default
credential chain; offline, the emulator registers the same outputs in its own CloudFormation, and the
only difference is the endpoint URL. Every operation goes through boto3 APIs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from mlops.core.constants import CHAMPION, STACK_SUFFIXES
from mlops.core.context import Stores
from mlops.core.errors import RegistryError
from mlops.core.ports import parse_s3_uri
from mlops.core.registry import PENDING, promote, rollback
from mlops.wiring.runtime import Resources, make_stores

TERMINAL = {"SUCCEEDED", "FAILED", "REJECTED"}
# How long a client waits for something the platform will do by itself (an answer, the trigger starting a run)
# before it gives up: a bound on liveness, never a latency check. The local endpoint answers within a function's
# timeout plus one cold start's init (both enforced by the emulator: up to 30 s + 120 s), API Gateway within its
# 29 s integration timeout. A shorter wait cuts off answers that are merely slow — a cold start on a busy
# machine — as a 10 s bound in a test once did.
LIVENESS_S = 300.0


def lineage(stores: Stores, ref: str) -> dict[str, Any]:
    """See :meth:`Platform.lineage`; ``ref`` is a sha256 (64 hex digits) or a run id."""
    ref = ref.strip().removeprefix("sha256:")
    digest = ref.lower()
    if len(digest) == 64 and all(ch in "0123456789abcdef" for ch in digest):
        uses = stores.meta.artifact_uses(digest)
        return {
            "artifact": digest,
            "produced_by": [_use(u) for u in uses if str(u["sk"]).startswith("OUTPUT#")],
            "used_by": [_use(u) for u in uses if str(u["sk"]).startswith("INPUT#")],
        }
    executions = stores.meta.executions(ref)
    if not executions:
        raise PlatformError(f"nothing in the lineage table for '{ref}': give an artifact's sha256 or a run id")
    return {"run_id": ref, "executions": [{k: v for k, v in e.items() if k not in ("pk", "sk")} for e in executions]}


def _use(item: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": item.get("run_id"), "step": item.get("step"), "name": item.get("name"), "uri": item.get("uri")}


def refusal(status: int, body: Any, what: str) -> str:
    """An API's refusal as the CLI prints it: the status and message, then every problem the answer lists, one a
    line (the message names only the first)."""
    if not isinstance(body, dict):
        return f"HTTP {status}: {body}"
    lines = [f"HTTP {status}: {body.get('message')}"]
    for error in body.get("errors") or []:
        row = f"{what} {error['row']}, " if error.get("row") is not None else ""
        field = f"field '{error['field']}'" if error.get("field") else "the whole " + what
        lines.append(f"  {row}{field}: {error.get('problem')}")
    return "\n".join(lines)


class PlatformError(RuntimeError):
    """The target cannot be reached or lacks what was asked for."""


class StillRunning(PlatformError):
    """A wait ended before the run did: the run goes on without the client (it runs in the state machine)."""

    def __init__(self, run_id: str, status: str | None, waited_s: float) -> None:
        super().__init__(f"run {run_id} still {status or 'RUNNING'} after {waited_s:.0f}s")
        self.run_id, self.status, self.waited_s = run_id, status or "RUNNING", waited_s


@dataclass
class Platform:
    session: boto3.session.Session
    outputs: dict[str, str]
    env: str
    endpoint: str | None = None
    model_name: str | None = None  # the model commands concern (``--model``); None: the deployment's only one

    # -- discovery -----------------------------------------------------------
    @classmethod
    def connect(cls, env: str = "dev", endpoint: str | None = None, region: str | None = None) -> Platform:
        """The deployment ``Mlops-<env>-*`` on AWS (the default credential chain), or at ``endpoint`` (the
        emulator: any credentials do). The endpoint goes to every client this platform makes; the process's
        environment is left as it was."""
        region = region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        if endpoint:
            session = boto3.session.Session(
                aws_access_key_id="offline", aws_secret_access_key="offline", region_name=region
            )
        else:
            session = boto3.session.Session(region_name=region)
        if endpoint:
            # Offline, this process tells the time by the emulator's clock (mlops.core.clock): what it writes (a
            # challenger's stint, the registry's history) is stamped as the emulator's functions stamp.
            from mlops.core import clock
            from mlops.local.emulator import read_clock_offset

            clock.set_offset(lambda: read_clock_offset(endpoint))
        cfn = session.client("cloudformation", endpoint_url=endpoint)
        outputs: dict[str, str] = {}
        for suffix in STACK_SUFFIXES:
            name = f"Mlops-{env}-{suffix}"
            try:
                stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
            except (ClientError, BotoCoreError) as err:
                if suffix in ("Serving", "Monitoring"):
                    continue  # optional for pipeline commands
                where = f"the local endpoint {endpoint}" if endpoint else "AWS (default credentials)"
                raise PlatformError(f"stack {name} not found on {where}: {err}") from None
            outputs.update({o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])})
        return cls(session=session, outputs=outputs, env=env, endpoint=endpoint)

    @classmethod
    def local(cls, state_file: Path | None = None) -> Platform:
        from mlops.local.emulator import read_local_file

        info = json.loads(state_file.read_text()) if state_file else read_local_file()
        if not info:
            raise PlatformError("no local endpoint is running: start one with `mlops local up`")
        return cls.connect(info["env"], info["endpoint"], info["region"])

    def started_at(self) -> str | None:
        """When the local emulator started (its state is in memory: older runs are gone); None on AWS."""
        if not self.endpoint:
            return None
        from mlops.local.emulator import read_local_file

        info = read_local_file() or {}
        return str(info["started_at"]) if info.get("endpoint") == self.endpoint and info.get("started_at") else None

    # -- wiring ----------------------------------------------------------------
    def output(self, key: str) -> str:
        if key not in self.outputs:
            raise PlatformError(f"stack output '{key}' not found (have: {', '.join(sorted(self.outputs))})")
        return self.outputs[key]

    def models(self) -> list[str]:
        """Every model the deployment serves (its catalog, as a stack output)."""
        return [m for m in self.output("Models").split(",") if m]

    def for_model(self, name: str | None) -> Platform:
        """This platform, with commands about model ``name`` (None: the only one). Unknown or ambiguous names
        fail here, naming the models there are."""
        models = self.models()
        if name is None:
            if len(models) != 1:
                raise PlatformError(f"this deployment has {len(models)} models ({', '.join(models)}): give --model")
            name = models[0]
        elif name not in models:
            raise PlatformError(f"unknown model '{name}'; this deployment has: {', '.join(models)}")
        return dataclasses.replace(self, model_name=name)

    @property
    def model(self) -> str:
        if self.model_name is None:
            return self.for_model(None).model
        return self.model_name

    def catalog(self) -> Any:
        """Every model's config as the deployment runs it (the catalog and config parameters in SSM)."""
        from mlops.adapters.parameters import SsmParameters
        from mlops.wiring.runtime import load_catalog_parameter

        return load_catalog_parameter(self.output("CatalogParameter"), SsmParameters(self.client("ssm")))

    def config(self) -> Any:
        """The config of the model this platform concerns."""
        return self.catalog().get(self.model)

    @property
    def stores(self) -> Stores:
        resources = Resources(
            artifact_bucket=self.output("ArtifactBucket"),
            landing_bucket=self.output("LandingBucket"),
            runs_table=self.output("RunsTable"),
            models_table=self.output("ModelsTable"),
            lineage_table=self.output("LineageTable"),
            features_table=self.outputs.get("FeaturesTable") or None,
        )
        events = (
            {
                "bus": self.outputs["EventBusName"],
                "source": self.outputs.get("EventSource", ""),
                "environment": self.env,
            }
            if self.outputs.get("EventBusName")
            else None
        )  # a person's promotion or rollback is a fact too
        return make_stores(resources, self.session, endpoint_url=self.endpoint, events=events)

    @property
    def workflow(self) -> Any:
        """The training state machine's executions and waiting tasks (the workflow port)."""
        from mlops.adapters.executions import StepFunctionsExecutions

        return StepFunctionsExecutions(self.client("stepfunctions"), self.output("StateMachineArn"))

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint)  # type: ignore[call-overload]

    # -- runs --------------------------------------------------------------------
    def upload(self, body: bytes, key: str) -> dict[str, str]:
        resp = self.client("s3").put_object(Bucket=self.output("LandingBucket"), Key=key, Body=body)
        return {"bucket": self.output("LandingBucket"), "key": key, "etag": resp["ETag"].strip('"')}

    def request_run(self, key: str | None = None, reason: str = "", requested_by: str | None = None) -> dict[str, Any]:
        event = {
            "action": "run",
            "model": self.model,
            "reason": reason,
            "requested_by": requested_by or os.environ.get("USER", "cli"),
        }
        if key:
            event["key"] = key
        return self.invoke("trigger", event)

    def run_for_upload(self, key: str, etag: str, timeout: float = LIVENESS_S) -> str:
        """The run an upload started (the trigger runs asynchronously, as from EventBridge, and may cold-start)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for run in self.stores.meta.list_runs(self.model, limit=20):
                trig = run.get("trigger") or {}
                if trig.get("key") == key and trig.get("etag") == etag:
                    return str(run["run_id"])
                if key in trig.get("keys", []) or key in {c.get("key") for c in trig.get("coalesced", [])}:
                    return str(run["run_id"])
            time.sleep(0.3)
        raise PlatformError(f"no run started for s3://{self.output('LandingBucket')}/{key} within {timeout:.0f}s")

    def wait(
        self,
        run_id: str,
        timeout: float | None = 900,
        on_step: Callable[[str, dict[str, Any]], None] | None = None,
        until: set[str] | None = None,
    ) -> dict[str, Any]:
        """The run's record once its status is in ``until`` (a finished run), reporting each finished step to
        ``on_step``; :class:`StillRunning` after ``timeout`` seconds (None: no limit) — the run itself goes on."""
        until = until or TERMINAL
        seen: set[str] = set()
        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        while True:
            run = self.stores.meta.get_run(self.model, run_id) or {}
            for name, step in run.get("steps", {}).items():
                if step.get("status") not in (None, "RUNNING") and name not in seen:
                    seen.add(name)
                    if on_step:
                        on_step(name, step)
            if run.get("status") in until:
                if run.get("status") in TERMINAL and run.get("execution_arn"):
                    self._wait_execution(str(run["execution_arn"]), deadline)  # what AWS reports, not our record
                return run
            if time.monotonic() > deadline:
                raise StillRunning(run_id, run.get("status"), float(timeout or 0))
            time.sleep(0.3)

    def _wait_execution(self, execution_arn: str, deadline: float) -> str:
        """Until Step Functions says the execution has ended (the run record is closed a state earlier)."""
        sfn = self.client("stepfunctions")
        while True:
            status = str(sfn.describe_execution(executionArn=execution_arn)["status"])
            if status != "RUNNING":
                return status
            if time.monotonic() > deadline:
                raise PlatformError(f"execution {execution_arn} still RUNNING")
            time.sleep(0.2)

    # -- batch scoring jobs ---------------------------------------------------------------------------------
    def score(self, source: str | Path, name: str | None = None) -> dict[str, str]:
        """Put ``source`` under the model's scoring prefix, which starts a scoring job: a local file (as
        ``<prefix><name>``), an ``s3://`` object (copied there), or an ``s3://…/`` folder (its tables copied under
        ``<prefix><folder>/``, then its ``_SUCCESS``). The upload that starts the job: its key and ETag."""
        from mlops.core.constants import SUCCESS_MARKER
        from mlops.core.scoring import table_format

        prefix, landing, s3 = self.config().scoring_prefix, self.output("LandingBucket"), self.client("s3")
        text = str(source)
        if not text.startswith("s3://"):
            path = Path(text)
            return self.upload(path.read_bytes(), f"{prefix}{name or path.name}")
        bucket, key = parse_s3_uri(text)
        if not key.endswith("/"):
            target = f"{prefix}{name or key.rsplit('/', 1)[-1]}"
            resp = s3.copy_object(Bucket=landing, Key=target, CopySource={"Bucket": bucket, "Key": key})
            return {"bucket": landing, "key": target, "etag": resp["CopyObjectResult"]["ETag"].strip('"')}
        folder = f"{prefix}{name or key.rstrip('/').rsplit('/', 1)[-1] or 'batch'}/"
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
        tables = [o["Key"] for page in pages for o in page.get("Contents", []) if table_format(o["Key"])]
        if not tables:
            raise PlatformError(f"no CSV, Parquet or JSON Lines file under {text}")
        for src in tables:
            s3.copy_object(Bucket=landing, Key=folder + src[len(key) :], CopySource={"Bucket": bucket, "Key": src})
        return self.upload(b"", folder + SUCCESS_MARKER)

    def jobs(self, limit: int = 20) -> list[dict[str, Any]]:
        return self.stores.meta.list_jobs(self.model, limit=limit)

    def job_for_upload(self, key: str, etag: str, timeout: float = LIVENESS_S) -> str:
        """The scoring job an upload started (the trigger runs asynchronously, as from EventBridge)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for job in self.jobs(50):
                trigger = job.get("trigger") or {}
                if trigger.get("key") == key and trigger.get("etag") == etag:
                    return str(job["job_id"])
            time.sleep(0.3)
        raise PlatformError(
            f"no scoring job started for s3://{self.output('LandingBucket')}/{key} within {timeout:.0f}s"
        )

    def wait_job(self, job_id: str, timeout: float | None = 900) -> dict[str, Any]:
        """The job's record once it has finished (its execution ended too); :class:`StillRunning` after ``timeout``."""
        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        while True:
            job = self.stores.meta.get_job(self.model, job_id) or {}
            if job.get("status") in ("SUCCEEDED", "FAILED"):
                if job.get("execution_arn"):
                    self._wait_execution(str(job["execution_arn"]), deadline)
                return job
            if time.monotonic() > deadline:
                raise StillRunning(job_id, job.get("status"), float(timeout or 0))
            time.sleep(0.3)

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return self.stores.meta.list_runs(self.model, limit=limit)

    def run(self, run_id: str) -> dict[str, Any]:
        run = self.stores.meta.get_run(self.model, run_id)
        if run is None:
            raise PlatformError(f"no run {run_id} for model {self.model}")
        return run

    # -- registry ------------------------------------------------------------------
    def versions(self) -> list[dict[str, Any]]:
        return self.stores.meta.list_model_versions(self.model)

    def version(self, version: int) -> dict[str, Any]:
        record = self.stores.meta.get_model_version(self.model, version)
        if record is None:
            raise PlatformError(f"{self.model} has no version {version}")
        return record

    # -- feature store -------------------------------------------------------------
    def feature_sets(self) -> Any:
        """The deployment's feature sets (the catalog's), validated."""
        return self.catalog().feature_sets

    def feature_set(self, name: str) -> dict[str, Any]:
        """A feature set: its definition, its latest registry version, the models that take features from it
        (their configs) and the versions of those models that trained on it (their lineage), and its quarantined
        uploads."""
        from mlops.core.config import ConfigError
        from mlops.core.feature_sets import registry_key, trained_on

        catalog = self.catalog()
        try:
            fs = catalog.feature_sets.get(name)
        except ConfigError as err:
            raise PlatformError(str(err)) from None
        latest = self.stores.meta.latest_schema(registry_key(name))
        return {
            "name": name,
            "definition": fs.model_dump(mode="json"),
            "definition_hash": fs.definition_hash(),
            "registry_version": latest and {k: latest[k] for k in ("version", "definition_hash", "at") if k in latest},
            "models": trained_on(self.stores, catalog, name),
            "quarantined": sorted(self.stores.meta.quarantined(registry_key(name))),
        }

    def ingest_features(self, path: Path, name: str | None) -> dict[str, str]:
        """Upload ``path`` under the feature set's source prefix (the ingestion rule takes it from there); the set
        may be left out when the deployment has one."""
        sets = self.feature_sets()
        if name is None:
            if len(sets) != 1:
                raise PlatformError(
                    f"this deployment has {len(sets)} feature sets ({', '.join(sets.names)}): give --set"
                )
            name = sets.names[0]
        if name not in sets:
            raise PlatformError(f"unknown feature set '{name}'; this deployment has: {', '.join(sets.names) or 'none'}")
        return {"feature_set": name, **self.upload(path.read_bytes(), f"{sets.get(name).source}{path.name}")}

    def wait_for_ingestion(self, name: str, etag: str, key: str, timeout: float = LIVENESS_S) -> dict[str, Any]:
        """The ingestion's outcome for an upload: its receipt (ingested) or its quarantine record."""
        from mlops.core.artifact_io import get_json
        from mlops.core.feature_sets import registry_key
        from mlops.core.ports import ObjectInfo
        from mlops.steps.ingest_features import receipt_key

        fs = self.feature_sets().get(name)
        landing = self.output("LandingBucket")
        receipt = receipt_key(fs, ObjectInfo(landing, key, 0, etag, None))
        deadline = time.monotonic() + timeout
        while True:
            if self.stores.artifacts.exists(receipt):
                return dict(get_json(self.stores.artifacts, self.stores.artifacts.uri(receipt)))
            held = self.stores.meta.quarantined(registry_key(name)).get(f"{landing}/{key}")
            if held and held.get("etag") == etag:
                return {"status": "quarantined", **held}
            if time.monotonic() > deadline:
                raise PlatformError(f"no ingestion of s3://{landing}/{key} after {timeout:.0f} s")
            time.sleep(1)

    def online_features(self, name: str, entity: str) -> dict[str, Any]:
        """An entity's latest values in the online store, with their event time and whether they are live."""
        from mlops.core.clock import now_s

        online = self.stores.online
        if online is None:
            raise PlatformError("this deployment has no online feature store (no feature sets in cdk.json)")
        found = online.get_many(name, [entity])
        if entity not in found:
            raise PlatformError(f"feature set '{name}' holds no value for entity '{entity}'")
        value = found[entity]
        return {**dataclasses.asdict(value), "live": value.live(now_s())}

    def lineage(self, ref: str) -> dict[str, Any]:
        """The lineage table both ways: for an artifact's sha256, every run and step that produced or used it;
        for a run id, each step's execution with its input and output artifacts."""
        return lineage(self.stores, ref)

    def champion(self) -> int | None:
        return self.stores.meta.get_alias(self.model, CHAMPION)

    def history(self) -> list[dict[str, Any]]:
        return self.stores.meta.alias_history(self.model)

    def promote(self, version: int, reason: str, actor: str) -> dict[str, Any]:
        """Promote now — or, for a version waiting in a run for manual approval, release that run."""
        record = self.version(version)
        if record.get("status") == PENDING and record.get("approval_token"):
            return self.approve(version, reason=reason, actor=actor)
        try:
            return promote(self.stores, self.model, version, reason=reason, actor=actor)
        except RegistryError as err:
            raise PlatformError(str(err)) from None

    def challenge(self, version: int, mode: str, percent: float, reason: str, actor: str) -> dict[str, Any]:
        """C4: set a canary (``percent`` of traffic) or a shadow challenger."""
        from mlops.core.registry import set_challenger

        try:
            return set_challenger(
                self.stores, self.model, version, mode=mode, percent=percent, reason=reason, actor=actor
            )
        except RegistryError as err:
            raise PlatformError(str(err)) from None

    def withdraw(self, reason: str, actor: str) -> dict[str, Any]:
        from mlops.core.registry import withdraw_challenger

        try:
            return withdraw_challenger(self.stores, self.model, reason=reason, actor=actor)
        except RegistryError as err:
            raise PlatformError(str(err)) from None

    def challenger(self) -> dict[str, Any] | None:
        """The challenger alias (version, mode, percent), if any."""
        from mlops.core.constants import CHALLENGER

        return self.stores.meta.get_alias_item(self.model, CHALLENGER)

    def now(self) -> Any:
        """The target's clock: the wall clock, or the emulator's (which ``mlops local tick --advance`` moves)."""
        from datetime import UTC, datetime, timedelta

        offset = 0.0
        if self.endpoint:
            from mlops.local.emulator import read_clock_offset

            offset = read_clock_offset(self.endpoint)
        return datetime.now(UTC) + timedelta(seconds=offset)

    def compare(self, hours: float = 24.0) -> dict[str, Any] | None:
        """C4: champion against challenger on the last ``hours`` of captured traffic (None: no challenger)."""
        from mlops.core.config import Task
        from mlops.core.constants import CAPTURES_PREFIX, FEEDBACK_PREFIX
        from mlops.monitoring.monitor import Window, compare, read_partitions

        champion = self.champion()
        if champion is None:
            raise PlatformError(f"{self.model} has no champion yet")
        window = Window.ending(self.now(), hours)
        captured = [
            r
            for r in read_partitions(self.stores, CAPTURES_PREFIX, self.model, window.dates())
            if window.holds(str(r.get("time")))
        ]
        labels = read_partitions(self.stores, FEEDBACK_PREFIX, self.model, window.dates())
        task = Task(self.version(champion).get("task", "binary"))
        result = compare(self.stores, self.config(), task, champion, captured, labels)
        return None if result is None else {**result, "window": {"hours": hours, "end": window.end.isoformat()}}

    def retain(self) -> dict[int, list[str]]:
        """Copy every version's artifacts out of run scratch (upgrade from a release that kept them there)."""
        from mlops.core.registry import retain_version

        return {v["version"]: retain_version(self.stores, self.model, v["version"]) for v in self.versions()}

    def rollback(self, reason: str, actor: str) -> dict[str, Any]:
        try:
            return rollback(self.stores, self.model, reason=reason, actor=actor)
        except RegistryError as err:
            raise PlatformError(str(err)) from None

    def approve(self, version: int, reason: str, actor: str) -> dict[str, Any]:
        token = self.version(version).get("approval_token")
        if not token:
            raise PlatformError(f"version {version} is not waiting for approval")
        self.workflow.succeed_task(token, {"approved_by": actor, "reason": reason or f"approved by {actor}"})
        return {"version": version, "action": "approved", "actor": actor, "reason": reason}

    def reject(self, version: int, reason: str, actor: str) -> dict[str, Any]:
        token = self.version(version).get("approval_token")
        if not token:
            raise PlatformError(f"version {version} is not waiting for approval")
        self.workflow.fail_task(token, "ApprovalRejected", f"{actor}: {reason}")
        return {"version": version, "action": "rejected", "actor": actor, "reason": reason}

    def served_at(self, when: str) -> int | None:
        from mlops.core.registry import served_at

        return served_at(self.stores, self.model, when)

    # -- events -------------------------------------------------------------------------
    def events(self, since_ms: int = 0, model: str | None = None) -> list[dict[str, Any]]:
        """The platform's events kept in the environment's log group (every fact, as EventBridge delivered it),
        oldest first; ``model``: only that model's."""
        logs = self.client("logs")
        request: dict[str, Any] = {"logGroupName": self.output("EventLogGroup"), "startTime": since_ms}
        found = []
        while True:
            page = logs.filter_log_events(**request)
            for item in page.get("events", []):
                event = json.loads(item["message"])
                if model is None or (event.get("detail") or {}).get("model") == model:
                    found.append({**event, "_ms": item["timestamp"]})
            if not page.get("nextToken"):
                break
            request["nextToken"] = page["nextToken"]
        return sorted(found, key=lambda e: (e["_ms"], str(e.get("time"))))

    # -- quarantine ---------------------------------------------------------------------
    def quarantined(self) -> list[dict[str, Any]]:
        """The objects prefix and scheduled runs skip: each with the run that rejected it and why."""
        return sorted(self.stores.meta.quarantined(self.model).values(), key=lambda q: str(q.get("at")))

    def release(self, key: str | None) -> list[str]:
        """Lift the quarantine of one object (its key, or ``bucket/key``) or, with None, of every object."""
        held = self.stores.meta.quarantined(self.model)
        if key is None:
            chosen = list(held)
        else:
            chosen = [k for k in held if k == key or k.split("/", 1)[1] == key]
            if not chosen:
                raise PlatformError(f"{key} is not quarantined for {self.model} (`mlops quarantine list`)")
        return [k for k in chosen if self.stores.meta.release_quarantine(self.model, k)]

    # -- schema -------------------------------------------------------------------------
    def schema(self) -> dict[str, Any]:
        from mlops.core.artifact_io import get_json

        current = self.stores.meta.latest_schema(self.model)
        if current is None:
            raise PlatformError(f"no schema yet for {self.model}: the first run infers one")
        return {
            "version": current["version"],
            "source": current.get("source"),
            "schema": get_json(self.stores.artifacts, current["schema"]["uri"]),
        }

    def push_schema(self, schema: dict[str, Any], actor: str) -> dict[str, Any]:
        """Store an edited schema as the next version: later runs validate against it."""
        from mlops.core.registry import push_schema

        if not isinstance(schema.get("features"), dict) or not schema["features"]:
            raise PlatformError("a schema needs a non-empty 'features' mapping (see `mlops schema show`)")
        for name, spec in schema["features"].items():
            if spec.get("type") not in ("numeric", "categorical"):
                raise PlatformError(f"features.{name}.type must be 'numeric' or 'categorical'")
        return push_schema(self.stores, self.model, schema, f"user:{actor}")

    # -- predictions ------------------------------------------------------------------
    def api_request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Call the prediction API: no auth offline; SigV4 (iam) or the API key (api_key) when deployed."""
        import urllib.error
        import urllib.request

        url = self.output("ApiUrl").rstrip("/") + path
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        auth = self.outputs.get("ApiAuth")
        if not self.endpoint and auth == "api_key":
            key = self.client("apigateway").get_api_key(apiKey=self.output("ApiKeyId"), includeValue=True)
            headers["x-api-key"] = key["value"]
        elif not self.endpoint and auth == "iam":
            from botocore.auth import SigV4Auth
            from botocore.awsrequest import AWSRequest

            credentials = self.session.get_credentials()
            if credentials is None:
                raise PlatformError("the API uses IAM auth and no AWS credentials were found")
            request = AWSRequest(method=method, url=url, data=data, headers=headers)
            SigV4Auth(credentials, "execute-api", self.session.region_name).add_auth(request)
            headers = dict(request.headers.items())
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=LIVENESS_S) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            payload = err.read()
            try:
                return err.code, json.loads(payload)
            except ValueError:
                return err.code, {"message": payload.decode(errors="replace")}

    def predict(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        status, body = self.api_request("POST", f"/models/{self.model}/predict", {"records": records})
        if status != 200:
            raise PlatformError(refusal(status, body, "record"))
        return dict(body)

    def feedback(self, labels: list[dict[str, Any]]) -> dict[str, Any]:
        """Ground-truth labels for earlier predictions (by request_id and row, or by id)."""
        status, body = self.api_request("POST", f"/models/{self.model}/feedback", {"labels": labels})
        if status != 202:
            raise PlatformError(refusal(status, body, "label"))
        return dict(body)

    # -- monitoring ----------------------------------------------------------------------
    def monitor(self, end: str | None = None) -> dict[str, Any]:
        """D3: judge the window ending at ``end`` (now) on demand; the monitor's summary."""
        result: dict[str, Any] = self.invoke("monitor", {"model": self.model, **({"end": end} if end else {})})
        return result

    def latest_monitor(self) -> dict[str, Any] | None:
        from mlops.core.constants import MONITORING_PREFIX

        key = f"{MONITORING_PREFIX}{self.model}/latest.json"
        if not self.stores.artifacts.exists(key):
            return None
        return dict(json.loads(self.stores.artifacts.get_bytes(self.stores.artifacts.uri(key))))

    def alarm_name(self, kind: str) -> str:
        """This model's alarm of ``kind`` (``DriftAlarm``, ``QualityAlarm``), from the stack outputs."""
        from mlops.core.constants import model_output_key

        return self.output(model_output_key(kind, self.model))

    def alarms(self) -> list[dict[str, Any]]:
        """This environment's CloudWatch alarms (their names start with the stack names)."""
        prefix = f"Mlops-{self.env}-"
        pages = self.client("cloudwatch").get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix)
        return [a for page in pages for a in page.get("MetricAlarms", [])]

    # -- functions -------------------------------------------------------------------
    def function_name(self, function: str) -> str:
        if function == "trigger":
            return self.output("TriggerFunction")
        return self.output("Function" + "".join(p.title() for p in function.split("_")))

    def invoke(self, function: str, event: Any) -> Any:
        resp = self.client("lambda").invoke(FunctionName=self.function_name(function), Payload=json.dumps(event))
        payload = json.loads(resp["Payload"].read() or b"null")
        if resp.get("FunctionError"):
            raise PlatformError(f"{function} failed: {payload.get('errorType')}: {payload.get('errorMessage')}")
        return payload
