"""The places the emulator reaches into moto — kept small, and tested.

1. ``moto.awslambda.models.LambdaFunction.invoke``: moto without Docker only answers a stub. For the
   functions this app registered, the real handler runs instead, in an execution environment of its
   own (:mod:`mlops.local.environments`: a worker process with the function's memory and timeout
   enforced; synchronously for RequestResponse, from a thread pool for Event invocations), and an
   exception, a crash, a timeout or running out of memory becomes a function error with Lambda's error
   payload, so Step Functions' Retry and Catch behave as in AWS.
2. ``moto.events.models.Rule.send_to_targets``: moto delivers events to queues and logs but not to
   Lambda. For Lambda targets the event is handed to the handler asynchronously, as EventBridge does.
   S3's "Object Created" detail is normalised to AWS's field names on the way (moto writes ``eTag``).
3. A bucket's EventBridge notification flag: moto parses the empty ``<EventBridgeConfiguration/>`` of
   ``PutBucketNotificationConfiguration`` as "absent", so :func:`enable_eventbridge` sets it directly.
4. ``moto.moto_server.werkzeug_app.DomainDispatcherApplication.__call__``: moto's backends are not
   thread-safe (two concurrent ``UpdateItem`` calls on one item raised "dictionary changed size during
   iteration"), so every request is dispatched under :data:`backend_lock`. A Lambda handler runs with the
   lock released — its own AWS calls are requests too — and so do the emulator's own reads of backends.
5. CloudWatch alarm history: moto keeps no history in AWS's shape and answers ``DescribeAlarmHistory`` with an
   HTTP 500. ``moto.cloudwatch.models.Alarm.update_state`` is wrapped to stamp each state change with the
   emulated clock (:mod:`mlops.core.clock`) and record it as AWS's ``StateUpdate`` history item, and
   ``DescribeAlarmHistory`` is answered from those records (:func:`alarm_history`).
6. Reads and switches the emulator needs that moto has no API for, each under :data:`backend_lock`:
   :func:`event_rules` (EventBridge rules, to fire schedules and deliver events), :func:`finished_executions`
   (Step Functions executions that ended, to emit their status-change events), :func:`execute_state_machines`
   (moto runs the ASL only when told), :func:`reset_backends` (a fresh account), :func:`quiet_logs`,
   :func:`log_events` and :func:`metric_data` (what CloudWatch holds, to meter what the functions log and
   publish), :func:`put_objects` (thousands of S3 objects at once, for tests of large listings),
   :func:`reclaim_idle` (every function's next invocation cold-starts, as after an idle hour in AWS).
7. What the functions ask of the endpoint, metered (:data:`requests`): every request a function's environment
   makes — named by its User-Agent (``app/fn.<handler>``) — counted by service and operation, with the bytes sent
   and an estimate of DynamoDB's request units. ``python -m benchmarks.cost`` reads it (S3 requests and DynamoDB
   units per run, per monitored window, per prediction).
8. The Step Functions Distributed Map, as AWS runs it (#29; the semantics in :mod:`mlops.local.distributed_map`).
   ``AmazonStateLanguageParser.parse`` first takes out of each Distributed Map what moto's grammar rejects
   (``ItemBatcher``, ``ExecutionType: EXPRESS``, an integer ``ToleratedFailurePercentage``, ``WriterConfig``) and
   hangs it on the parsed Map. ``DistributedIterationComponent._map_run`` then runs the Map Run: the ItemSelector
   applied to each item, the items batched, at most ``MaxConcurrency`` children at a time, and the Map failed with
   ``States.ExceedToleratedFailureThreshold`` past the tolerated failures (moto let it succeed with ``null``
   results). The ``s3:listObjectsV2`` ItemReader reads every page (moto read the first 1,000 objects), and the
   ``s3:putObject`` ResultWriter writes AWS's ``manifest.json``, ``SUCCEEDED_0.json`` and ``FAILED_0.json``, its
   ``Parameters`` evaluated against the state's input (moto's against the children's results: a ``Prefix.$``
   failed the Map).
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from mlops.core import clock
from mlops.core.constants import WARM_UP_EVENT
from mlops.local.environments import Environments, FunctionConfig, base_environment
from mlops.local.lambda_runtime import invoke
from mlops.local.targets import target_input


class BackendLock:
    """One lock around moto's backends; a thread holding it can lend it out while it waits on a handler."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()

    def __enter__(self) -> BackendLock:
        self._lock.acquire()
        self._local.held = True
        return self

    def __exit__(self, *exc: object) -> None:
        self._local.held = False
        self._lock.release()

    @contextmanager
    def released(self) -> Iterator[None]:
        """Release the lock for the duration, if this thread holds it (a handler runs meanwhile)."""
        if not getattr(self._local, "held", False):
            yield
            return
        self._local.held = False
        self._lock.release()
        try:
            yield
        finally:
            self._lock.acquire()
            self._local.held = True


backend_lock = BackendLock()


LocalFunction = FunctionConfig


@dataclass(frozen=True)
class Invocation:
    """One invocation an execution environment answered: what tests and the demo read of cold starts, and what
    ``benchmarks.cost`` bills (the CPU time of the handler and of a cold start's init, at the function's memory)."""

    handler: str
    warm_up: bool
    cold: bool
    error: bool
    duration_ms: float = 0.0  # from the request to the answer, the init of a cold start included
    init_ms: float = 0.0  # of which the cold start's init
    memory_mb: int = 0  # the function's MemorySize
    handler_ms: float = 0.0  # the handler's own time in the environment (no emulator overhead): Lambda's duration
    init_cpu_ms: float = 0.0  # CPU time of the cold start's init and of the handler: what benchmarks.cost bills,
    cpu_ms: float = 0.0  # as a machine busy with other work stretches wall time but not these
    max_rss_mb: float = 0.0  # the environment's resident memory at its highest so far (watched; killed past memory_mb)


invocations: list[Invocation] = []  # since the emulator started (appended from the invoking threads)

_functions: dict[str, LocalFunction] = {}
_environments: Environments | None = None
_original: dict[str, Any] = {}
_pool: ThreadPoolExecutor | None = None
_pending: list[Future[Any]] = []
_log_lock = threading.Lock()
_log_path: Path | None = None


def log(message: str) -> None:
    line = f"{time.strftime('%H:%M:%S')} {message}"
    with _log_lock:
        if _log_path is not None:
            _log_path.parent.mkdir(parents=True, exist_ok=True)
            with _log_path.open("a") as fh:
                fh.write(line + "\n")


def functions() -> dict[str, LocalFunction]:
    return dict(_functions)


def register_function(
    physical_name: str, handler: str, env: dict[str, str], timeout_s: int, memory_mb: int, log_group: str = ""
) -> None:
    _functions[physical_name] = LocalFunction(physical_name, handler, env, timeout_s, memory_mb, log_group)


@dataclass(frozen=True)
class TaskDefinition:
    """What running an ECS task offline needs of its task definition (from the synthesized template)."""

    family: str
    arn: str
    container: str
    command: list[str]
    env: dict[str, str]
    cpu: int
    memory_mb: int
    log_group: str
    stream_prefix: str


_task_definitions: dict[str, TaskDefinition] = {}
tasks_run: list[dict[str, Any]] = []  # each task the state machines ran, as ECS's DescribeTasks describes it
_task_faults: list[str] = []


def register_task_definition(definition: TaskDefinition) -> None:
    _task_definitions[definition.family] = definition


def inject_task_fault(kind: str) -> None:
    """The next ECS task meets ``kind`` first: ``oom`` (allocates until killed for memory), ``exit:<status>``,
    ``abort`` or ``hang`` (tests and drills)."""
    _task_faults.append(kind)


def _run_ecs_task(
    self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
) -> None:
    """moto's ``ecs:runTask`` (which calls its ECS backend with the state's PascalCase parameters, and never runs a
    container): the task's container runs here as a process (:func:`mlops.local.environments.run_container`), its
    memory the run's override or the task definition's, and the state gets the stopped task as DescribeTasks
    gives it (``.sync`` then fails the state if its container exited non-zero: see :func:`_ecs_sync_resolver`)."""
    from mlops.core.clock import iso_ms, utcnow
    from mlops.local.container import CHAOS_ENV
    from mlops.local.environments import run_container

    params = normalised_parameters
    family = str(params["TaskDefinition"]).rsplit("/", 1)[-1].split(":")[0]
    definition = _task_definitions[family]
    overrides = params.get("Overrides") or {}
    extra = {
        e["Name"]: e["Value"]
        for o in overrides.get("ContainerOverrides") or []
        if o.get("Name") == definition.container
        for e in o.get("Environment") or []
    }
    if _task_faults:
        extra[CHAOS_ENV] = _task_faults.pop(0)
    memory = int(overrides.get("Memory") or definition.memory_mb)
    cpu = int(overrides.get("Cpu") or definition.cpu)
    task_id = uuid.uuid4().hex
    cluster = str(params.get("Cluster") or "default")
    started = iso_ms(utcnow())
    base = _environments.base_env if _environments is not None else base_environment()
    outcome = run_container(base, definition.command, {**definition.env, **extra}, memory)
    stream = f"{definition.stream_prefix}/{definition.container}/{task_id}"
    _queue_logs(definition.log_group, stream, [line.rstrip("\n") for line in outcome.output])
    strategy = params.get("CapacityProviderStrategy") or [{"CapacityProvider": "FARGATE"}]
    container: dict[str, Any] = {
        "Name": definition.container,
        "ExitCode": outcome.exit_code,
        "LastStatus": "STOPPED",
        "Memory": str(memory),
        "Cpu": str(cpu),
    }
    if outcome.reason:
        container["Reason"] = outcome.reason
    task = {
        "TaskArn": f"{cluster.replace(':cluster/', ':task/')}/{task_id}",
        "ClusterArn": cluster,
        "TaskDefinitionArn": definition.arn,
        "CapacityProviderName": strategy[0]["CapacityProvider"],
        "LaunchType": "FARGATE",
        "Cpu": str(cpu),
        "Memory": str(memory),
        "LastStatus": "STOPPED",
        "DesiredStatus": "STOPPED",
        "StartedBy": "AWS Step Functions",
        "StartedAt": started,
        "StoppedAt": iso_ms(utcnow()),
        "StopCode": "EssentialContainerExited",
        "StoppedReason": "Essential container in task exited",
        "Containers": [container],
        "Overrides": overrides,
    }
    tasks_run.append(task | {"PeakRssMb": round(outcome.peak_rss_mb, 1), "DurationS": round(outcome.duration_s, 3)})
    log(f"ecs task {family} {task_id}: exit {outcome.exit_code} {outcome.reason} ({outcome.duration_s:.1f} s)")
    env.stack.append({"Tasks": [task], "Failures": []})


def _aws_sdk_call(
    self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
) -> None:
    """moto's ``aws-sdk`` integration left ``s3:getObject``'s ``Body`` as botocore's stream (its check misses the
    checksummed stream botocore now returns), which no intrinsic can read; AWS gives the state the body as text."""
    _original["aws_sdk"](self, env, resource_runtime_part, normalised_parameters, state_credentials)
    response = env.stack[-1]
    body = response.get("Body") if isinstance(response, dict) else None
    if body is not None and hasattr(body, "read"):
        response["Body"] = body.read().decode()


def _ecs_sync_resolver(
    self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
) -> Any:
    """``.sync``: the task has stopped (:func:`_run_ecs_task` waited for it). As AWS does — and moto does not —
    a container that exited non-zero fails the state with ``States.TaskFailed``, the task's description as the
    cause; else the state's output is the task's description."""
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    task = env.stack.pop()["Tasks"][0]

    def resolve() -> Any:
        if all(c.get("ExitCode") == 0 for c in task["Containers"]):
            return task
        raise FailureEventException(
            FailureEvent(
                env=env,
                # a States.* name (moto's CustomErrorName refuses the prefix: the state then failed States.Runtime,
                # its cause that refusal, not the task)
                error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                event_type=HistoryEventType.TaskFailed,
                event_details=cast(Any, EventDetails)(
                    taskFailedEventDetails=TaskFailedEventDetails(
                        error="States.TaskFailed",
                        cause=json.dumps(task),
                        resource="runTask.sync",
                        resourceType="ecs",
                    )
                ),
            )
        )

    return resolve


_router: Any = None  # mlops.local.cloudwatch.LogRouter: function output to CloudWatch Logs and subscriptions
_log_pool: ThreadPoolExecutor | None = None


def route_logs(router: Any) -> None:
    """Send each function's log lines through ``router`` (set by the emulator once its endpoint is up)."""
    global _router, _log_pool
    _router = router
    if _log_pool is None:
        _log_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlops-logs")


# CloudWatch Logs buffers a log group's events and hands a subscription several at once: lines that arrive while
# the previous batch is being shipped ride in the next one (at most these many events / bytes per delivery).
LOG_BATCH_EVENTS = 1000
LOG_BATCH_BYTES = 1_000_000
_log_lock = threading.Lock()
_log_batches: dict[tuple[str, str], list[str]] = {}


def _queue_logs(log_group: str, function: str, lines: list[str]) -> None:
    with _log_lock:
        batch = _log_batches.get((log_group, function))
        if batch is not None:  # a delivery is scheduled and has not started: these lines go with it
            batch.extend(lines)
            return
        _log_batches[(log_group, function)] = list(lines)
        if _log_pool is not None:
            _pending.append(_log_pool.submit(_ship_logs, log_group, function))


def _ship_logs(log_group: str, function: str) -> None:
    with _log_lock:
        lines = _log_batches.pop((log_group, function), [])
    router = _router
    if router is None:  # the emulator stopped
        return
    chunk: list[str] = []
    size = 0
    for line in lines:
        if chunk and (len(chunk) >= LOG_BATCH_EVENTS or size + len(line) > LOG_BATCH_BYTES):
            router.ship(log_group, function, chunk)
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 26  # CloudWatch Logs counts 26 bytes of overhead per event
    if chunk:
        router.ship(log_group, function, chunk)


def deliver(physical_name: str, event: Any) -> None:
    """An asynchronous invocation of a registered function (a subscription filter's delivery, say)."""
    fn = _functions.get(physical_name)
    if fn is not None:
        _submit(fn, event)


_faults: dict[str, list[str]] = {}
CHAOS = ("abort", "oom", "hang")  # happen inside the function's process: a native crash, memory, a hang


def inject_fault(handler: str, error_type: str, times: int = 1) -> None:
    """Make the next ``times`` invocations of ``handler`` fail with ``error_type`` (tests and chaos drills);
    ``abort``, ``oom`` and ``hang`` really happen in the function's execution environment."""
    _faults.setdefault(handler, []).extend([error_type] * times)


@dataclass(frozen=True)
class Hold:
    """An invocation held before it runs: ``started`` is set when it reaches the function, which runs once
    ``release`` is set. Tests use it to look at what happens while a step is still at work (a slow monitor)."""

    started: threading.Event
    release: threading.Event


_holds: dict[str, Hold] = {}
HOLD_LIMIT_S = 600.0  # a forgotten hold ends this long after it started: an emulator never waits for ever


def hold_next(handler: str) -> Hold:
    """Hold the next invocation of ``handler`` (not a warm-up) until the returned hold is released."""
    held = Hold(threading.Event(), threading.Event())
    _holds[handler] = held
    return held


def _run(fn: LocalFunction, payload: Any) -> tuple[bytes, bool]:
    warm_up = payload == WARM_UP_EVENT
    held = None if warm_up else _holds.pop(fn.handler, None)
    if held is not None:
        held.started.set()
        held.release.wait(HOLD_LIMIT_S)
    queued = None if warm_up else _faults.get(fn.handler)  # a fault is meant for the step, not its warm-up
    chaos = None
    if queued:
        error_type = queued.pop(0)
        log(f"lambda {fn.handler} injected {error_type}")
        if error_type not in CHAOS:
            body = {"errorMessage": f"injected fault: {error_type}", "errorType": error_type, "stackTrace": []}
            return json.dumps(body).encode(), True
        chaos = error_type
    if _environments is None:  # no emulator: in-process (unit and functional tests)
        result = invoke(fn.handler, payload, timeout_s=fn.timeout_s, memory_mb=fn.memory_mb)
        status = "error " + str(result.payload.get("errorType")) if result.function_error else "ok"
        log(f"lambda {fn.handler} {result.request_id[:8]} {result.duration_ms:.0f} ms {status}")
        return result.payload_bytes(), result.function_error is not None
    out = _environments.invoke(fn, payload, chaos=chaos)
    if _router is not None and out.logs:  # off the caller's path, as in Lambda
        _queue_logs(fn.log_group, fn.physical_name, out.logs)
    status = f"error {out.payload.get('errorType')}" if out.error else "ok"
    invocations.append(
        Invocation(
            fn.handler,
            warm_up,
            out.cold,
            out.error,
            out.duration_ms,
            out.init_ms,
            fn.memory_mb,
            out.handler_ms,
            out.init_cpu_ms,
            out.cpu_ms,
            out.max_rss_mb,
        )
    )
    log(
        f"lambda {fn.handler}{' warm-up' if warm_up else ''} {out.duration_ms:.0f} ms{' (cold)' if out.cold else ''} "
        f"peak {out.max_rss_mb:.0f}/{fn.memory_mb} MB {status}"
    )
    return json.dumps(out.payload, default=str).encode(), out.error


def invoke_handler(handler: str, event: Any) -> tuple[Any, bool]:
    """Invoke the registered function whose folder is ``handler`` (the local API Gateway's integration)."""
    fn = next((f for f in _functions.values() if f.handler == handler), None)
    if fn is None:
        result = invoke(handler, event, timeout_s=30)
        return result.payload, result.function_error is not None
    body, errored = _run(fn, event)
    return json.loads(body), errored


def _submit(fn: LocalFunction, payload: Any) -> None:
    assert _pool is not None, "the emulator is not running"
    _pending.append(_pool.submit(_run, fn, payload))


def _lambda_invoke(self: Any, body: str, request_headers: Any, response_headers: Any) -> Any:
    fn = _functions.get(self.function_name)
    if fn is None:
        return _original["lambda"](self, body, request_headers, response_headers)
    payload = json.loads(body) if body else {}
    headers = {k.lower(): v for k, v in dict(request_headers).items()}
    if headers.get("x-amz-invocation-type") == "Event":
        _submit(fn, payload)
        return b""
    with backend_lock.released():
        out, errored = _run(fn, payload)
    if errored:
        response_headers["x-amz-function-error"] = "Unhandled"
    return out


def _aws_shape(event: dict[str, Any]) -> dict[str, Any]:
    """moto's S3 notification uses ``eTag`` and a float time; AWS sends ``etag`` and an ISO time."""
    if event.get("source") == "aws.s3":
        event = json.loads(json.dumps(event))
        obj = event.get("detail", {}).get("object", {})
        if "eTag" in obj:
            obj["etag"] = obj.pop("eTag")
        if isinstance(event.get("time"), int | float):
            event["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event["time"]))
    return event


def deliver_to_lambda_targets(rule: Any, event: dict[str, Any]) -> int:
    """Hand ``event`` to each Lambda target of ``rule`` that this app registered; return how many."""
    delivered = 0
    for target in rule.targets:
        name = target["Arn"].split(":function:")[-1].split(":")[0] if ":function:" in target["Arn"] else ""
        fn = _functions.get(name)
        if fn is not None:
            _submit(fn, target_input(target, _aws_shape(event)))
            delivered += 1
    return delivered


def _send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
    others = [t for t in self.targets if ":lambda:" not in t["Arn"] and ":sns:" not in t["Arn"]]
    if others:  # moto raises NotImplementedError for Lambda and SNS targets: give it only the ones it serves
        clone = copy.copy(self)
        clone.targets = others
        _original["events"](clone, original_event, transform_input)
    if rule_matches(self, original_event):
        deliver_to_lambda_targets(self, original_event)
        _deliver_to_topics(self, original_event)


def _deliver_to_topics(rule: Any, event: dict[str, Any]) -> None:
    """An SNS target gets the event as its message (what EventBridge publishes), through moto's SNS backend."""
    from moto.sns.models import sns_backends

    for target in rule.targets:
        arn = target["Arn"]
        if ":sns:" in arn:
            _, _, _, region, account, _ = arn.split(":", 5)
            sns_backends[account][region].publish(message=json.dumps(_aws_shape(event)), arn=arn)


def rule_matches(rule: Any, event: dict[str, Any]) -> bool:
    """EventBridge matching; a schedule-only rule matches no events (it fires on LocalCloud.tick())."""
    if rule.state != "ENABLED" or not rule.event_pattern.get_pattern():
        return False
    return bool(rule.event_pattern.matches_event(_aws_shape(event)))


def _dispatch(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
    key = request_key(environ)
    with backend_lock:
        result = _original["dispatch"](self, environ, start_response)
        if key is None:
            return result
        if key[1] == "dynamodb":  # a read's units depend on what it returned
            result = [b"".join(result)]
        _meter(key, environ, len(result[0]) if key[1] == "dynamodb" else 0)
        return result


def enable_eventbridge(account: str, bucket: str) -> None:
    from moto.s3.models import s3_backends

    backend = s3_backends[account]["aws"]
    config = backend.get_bucket(bucket).notification_configuration
    if config is None:
        backend.put_bucket_notification_configuration(bucket, {"EventBridgeConfiguration": {}})
    else:
        config.event_bridge = {}


def install(cloud: Any) -> None:
    """Patch moto (idempotent) and start the worker pool for asynchronous invocations."""
    global _pool, _log_path
    from moto.awslambda.models import LambdaFunction
    from moto.cloudwatch.models import Alarm
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.events.models import Rule
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from mlops.local.assembly import state_dir

    _log_path = state_dir() / "logs" / "emulator.log"
    if "lambda" not in _original:
        _original["lambda"] = LambdaFunction.invoke
        _original["events"] = Rule.send_to_targets
        _original["dispatch"] = DomainDispatcherApplication.__call__
        _original["alarm_state"] = Alarm.update_state
        LambdaFunction.invoke = _lambda_invoke  # type: ignore[method-assign]
        Rule.send_to_targets = _send_to_targets  # type: ignore[method-assign]
        DomainDispatcherApplication.__call__ = _dispatch  # type: ignore[method-assign]
        Alarm.update_state = _update_alarm_state  # type: ignore[method-assign]
        CloudWatchResponse.describe_alarm_history = _describe_alarm_history  # type: ignore[attr-defined]
    install_distributed_map()
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
        StateTaskServiceAwsSdk,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs import (
        StateTaskServiceEcs,
    )

    if "ecs_run" not in _original:
        _original["aws_sdk"] = StateTaskServiceAwsSdk._eval_service_task
        StateTaskServiceAwsSdk._eval_service_task = _aws_sdk_call  # type: ignore[method-assign]
        _original["ecs_run"] = StateTaskServiceEcs._eval_service_task
        _original["ecs_sync"] = StateTaskServiceEcs._build_sync_resolver
        StateTaskServiceEcs._eval_service_task = _run_ecs_task  # type: ignore[method-assign]
        StateTaskServiceEcs._build_sync_resolver = _ecs_sync_resolver  # type: ignore[method-assign]
    _functions.clear()
    _task_definitions.clear()
    tasks_run.clear()
    _task_faults.clear()
    invocations.clear()
    requests.clear()
    _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mlops-lambda-async")


def start_environments(isolated: bool = True, project_root: Path | None = None) -> None:
    """Run functions in execution environments of their own (call once the emulator's endpoint is set). The
    project's folder is on their import path, as its ``components`` package is in the code layer (/opt/python) in
    AWS."""
    global _environments
    from mlops.local.assembly import state_dir

    base = base_environment()
    if project_root is not None:
        base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(project_root), base.get("PYTHONPATH", "")]))
    _environments = Environments(base, state_dir() / "logs" / "functions") if isolated else None


DRAIN_S = 300.0  # a bound on liveness: an asynchronous invocation's cold start (up to 120 s) plus its timeout


def drain(timeout: float = DRAIN_S) -> None:
    """Wait for asynchronous invocations (and log deliveries) in flight, including those they start. Returns as
    soon as they are done; the bound only stops a wait for one that never ends, so it must outlast a cold start
    on a busy machine (a 30 s bound did not: a trigger's cold start could take longer)."""
    deadline = time.monotonic() + timeout
    while _pending and time.monotonic() < deadline:
        _pending.pop(0).result(timeout=max(0.1, deadline - time.monotonic()))


def uninstall() -> None:
    global _pool
    from moto.awslambda.models import LambdaFunction
    from moto.cloudwatch.models import Alarm
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.events.models import Rule
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    if "lambda" in _original:
        LambdaFunction.invoke = _original.pop("lambda")  # type: ignore[method-assign]
        Rule.send_to_targets = _original.pop("events")  # type: ignore[method-assign]
        DomainDispatcherApplication.__call__ = _original.pop("dispatch")  # type: ignore[method-assign]
        Alarm.update_state = _original.pop("alarm_state")  # type: ignore[method-assign]
        del CloudWatchResponse.describe_alarm_history  # type: ignore[attr-defined]
    uninstall_distributed_map()
    if "ecs_run" in _original:
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
            StateTaskServiceAwsSdk,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs import (
            StateTaskServiceEcs,
        )

        StateTaskServiceAwsSdk._eval_service_task = _original.pop("aws_sdk")  # type: ignore[method-assign]
        StateTaskServiceEcs._eval_service_task = _original.pop("ecs_run")  # type: ignore[method-assign]
        StateTaskServiceEcs._build_sync_resolver = _original.pop("ecs_sync")  # type: ignore[method-assign]
    for held in list(_holds.values()):  # nothing waits on a stopped emulator
        held.release.set()
    _holds.clear()
    global _environments
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None
    global _router, _log_pool
    _router = None
    with _log_lock:
        _log_batches.clear()
    if _log_pool is not None:
        _log_pool.shutdown(wait=False, cancel_futures=True)
        _log_pool = None
    if _environments is not None:
        _environments.close()
        _environments = None
    _pending.clear()
    _functions.clear()
    _faults.clear()


# -- 5. alarm history ----------------------------------------------------------------------------------------
HISTORY_ATTRIBUTE = "mlops_history"  # on moto's Alarm: its StateUpdate items, oldest first (reset with the account)


def history_item(name: str, old: tuple[str, str], new: tuple[str, str, str | None], when: Any) -> dict[str, Any]:
    """One ``StateUpdate`` item of ``DescribeAlarmHistory`` as AWS writes it: ``old``/``new`` are (state, reason[,
    reason data]); ``HistoryData`` is the JSON document AWS puts there."""
    new_state: dict[str, Any] = {"stateValue": new[0], "stateReason": new[1]}
    if new[2]:
        with suppress(ValueError):
            new_state["stateReasonData"] = json.loads(new[2])
    data = {"version": "1.0", "oldState": {"stateValue": old[0], "stateReason": old[1]}, "newState": new_state}
    return {
        "AlarmName": name,
        "AlarmType": "MetricAlarm",
        "Timestamp": when,
        "HistoryItemType": "StateUpdate",
        "HistorySummary": f"Alarm updated from {old[0]} to {new[0]}",
        "HistoryData": json.dumps(data),
    }


def _update_alarm_state(self: Any, reason: str, reason_data: str, state_value: str) -> None:
    old = (self.state_value, self.state_reason)
    _original["alarm_state"](self, reason, reason_data, state_value)
    now = clock.utcnow()
    self.state_updated_timestamp = now.replace(tzinfo=None)  # moto keeps naive UTC; the emulated clock's
    self.__dict__.setdefault(HISTORY_ATTRIBUTE, []).append(
        history_item(self.name, old, (state_value, reason, reason_data), now)
    )


def alarm_history(
    alarms: list[Any],
    *,
    name: str | None = None,
    item_type: str | None = None,
    start: Any = None,
    end: Any = None,
    ascending: bool = False,
) -> list[dict[str, Any]]:
    """The history items of ``alarms`` (moto's), filtered as ``DescribeAlarmHistory`` filters them: by alarm
    name, item type and ``start <= Timestamp <= end``, newest first unless ``ascending``."""
    from datetime import UTC

    def aware(when: Any) -> Any:
        return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when

    start, end = aware(start), aware(end)
    items = [
        item
        for alarm in alarms
        if name is None or alarm.name == name
        for item in getattr(alarm, HISTORY_ATTRIBUTE, [])
        if (item_type is None or item["HistoryItemType"] == item_type)
        and (start is None or item["Timestamp"] >= start)
        and (end is None or item["Timestamp"] <= end)
    ]
    return sorted(items, key=lambda item: item["Timestamp"], reverse=not ascending)


def _describe_alarm_history(self: Any) -> Any:
    """``DescribeAlarmHistory`` (moto has no such action): metric alarms' state changes, paged as AWS pages."""
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core.responses import ActionResult

    types = self._get_param("AlarmTypes") or ["MetricAlarm"]
    backend = cloudwatch_backends[self.current_account][self.region]
    items = (
        alarm_history(
            list(backend.alarms.values()),
            name=self._get_param("AlarmName"),
            item_type=self._get_param("HistoryItemType"),
            start=self._get_param("StartDate"),
            end=self._get_param("EndDate"),
            ascending=self._get_param("ScanBy") == "TimestampAscending",
        )
        if "MetricAlarm" in types
        else []
    )
    first = int(self._get_param("NextToken") or 0)
    size = int(self._get_param("MaxRecords") or 100)
    page: dict[str, Any] = {"AlarmHistoryItems": items[first : first + size]}
    if first + size < len(items):
        page["NextToken"] = str(first + size)
    return ActionResult(page)


# -- 6. reads and switches moto has no API for ---------------------------------------------------------------
def event_rules(account: str, region: str) -> list[Any]:
    """Every EventBridge rule of the account's region, on every bus."""
    from moto.events.models import events_backends

    with backend_lock:
        return [r for bus in events_backends[account][region].event_buses.values() for r in bus.rules.values()]


@dataclass(frozen=True)
class FinishedExecution:
    arn: str
    state_machine_arn: str
    name: str
    status: str  # SUCCEEDED | FAILED | TIMED_OUT | ABORTED
    input: Any


def finished_executions(account: str, region: str) -> list[FinishedExecution]:
    """The Step Functions executions that have ended (moto's ASL engine keeps them in its parser backend)."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    backend = stepfunctions_parser_backends[account][region]
    with backend_lock:
        executions = list(backend._get_executions())
    out = []
    for execution in executions:
        if execution.exec_status is None:
            continue
        status = str(getattr(execution.exec_status, "value", execution.exec_status))
        if status != "RUNNING":
            out.append(
                FinishedExecution(
                    execution.exec_arn, execution.state_machine_arn, execution.name, status, execution.input_data
                )
            )
    return out


def execute_state_machines(on: bool) -> None:
    """moto runs a state machine's ASL (its parser engine) only when its user config says so."""
    from moto.core.config import default_user_config

    default_user_config["stepfunctions"] = {"execute_state_machine": on}


def log_events(account: str, region: str) -> dict[tuple[str, str], list[str]]:
    """Every log event's message CloudWatch Logs holds, by (log group, log stream), oldest first."""
    from moto.logs.models import logs_backends

    with backend_lock:
        groups = logs_backends[account][region].groups
        return {
            (name, stream_name): [e.message for e in stream.events]
            for name, group in groups.items()
            for stream_name, stream in group.streams.items()
        }


def metric_data(account: str, region: str) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """(namespace, metric, dimensions) of every datum CloudWatch received, oldest first: the series a stretch of
    work published are those of the data it added (ListMetrics cannot tell an old series from a new one)."""
    from moto.cloudwatch.models import cloudwatch_backends

    with backend_lock:
        data = list(cloudwatch_backends[account][region].metric_data)
    return [(d.namespace, d.name, tuple(sorted((str(x.name), str(x.value)) for x in d.dimensions))) for d in data]


def put_objects(account: str, bucket: str, objects: dict[str, bytes]) -> None:
    """Put ``objects`` (key: body) into ``bucket`` straight into moto's S3 backend: thousands of objects in well
    under a second, where as many ``PutObject`` requests take seconds (tests and benchmarks of large listings)."""
    from moto.s3.models import s3_backends

    with backend_lock:
        backend = s3_backends[account]["aws"]
        for key, body in objects.items():
            backend.put_object(bucket, key, body)


def reclaim_idle() -> int:
    """Stop every idle execution environment, as Lambda does after minutes without work: each function's next
    invocation cold-starts (what an hourly or weekly schedule meets in AWS). Returns how many were stopped."""
    return _environments.reclaim_idle() if _environments is not None else 0


def reset_backends() -> None:
    """Every moto backend back to empty: a fresh account."""
    from moto.moto_api._internal.models import moto_api_backend

    with backend_lock:
        moto_api_backend.reset()


def quiet_logs() -> None:
    """One werkzeug line per request is noise here; moto's ASL engine logs every Fail state as an exception
    (a failed run is reported by its run record)."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").setLevel(logging.CRITICAL)


# -- 7. requests at the endpoint, per calling function ------------------------------------------------------
@dataclass
class RequestTally:
    count: int = 0
    bytes_in: int = 0  # what the requests sent (an S3 put's object)
    units: int = 0  # DynamoDB: request units, estimated (a write: 1 per KB sent; a read: 1 per 4 KB returned)


RequestKey = tuple[str, str, str]  # (function's handler, service, operation)
requests: dict[RequestKey, RequestTally] = {}  # since the emulator started; read with metered_requests()

_CALLER = re.compile(r"\bapp/fn\.([\w-]+)")
_SERVICE = re.compile(r"Credential=[^/]*/\d{8}/[^/]*/([^/]+)/aws4_request")
DYNAMODB_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


def request_key(environ: dict[str, Any]) -> RequestKey | None:
    """(function, service, operation) of a request a function's environment made; None for any other caller (the
    emulator itself, the CLI, a test)."""
    caller = _CALLER.search(str(environ.get("HTTP_USER_AGENT", "")))
    if caller is None:
        return None
    service = _SERVICE.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    name = service.group(1) if service else "unknown"
    method = str(environ.get("REQUEST_METHOD", "GET"))
    if name == "s3":  # path-style against the endpoint: /<bucket>[/<key>]
        key = str(environ.get("PATH_INFO", "/")).lstrip("/").partition("/")[2]
        return caller.group(1), name, s3_operation(method, key, environ)
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))  # JSON protocols: DynamoDB_20120810.PutItem
    return caller.group(1), name, target.rsplit(".", 1)[-1] if target else method


def s3_operation(method: str, key: str, environ: dict[str, Any]) -> str:
    """The S3 operation of a path-style request, as far as its price goes (PUT, COPY, POST and LIST one tier;
    GET and HEAD another; DELETE free)."""
    if method == "PUT":
        return "CopyObject" if environ.get("HTTP_X_AMZ_COPY_SOURCE") else ("PutObject" if key else "PutBucket")
    if method == "POST":
        return "DeleteObjects" if "delete" in str(environ.get("QUERY_STRING", "")) else "PostObject"
    if method == "DELETE":
        return "DeleteObject"
    if not key:
        return "ListObjects" if method == "GET" else "HeadBucket"
    return "HeadObject" if method == "HEAD" else "GetObject"


def _meter(key: RequestKey, environ: dict[str, Any], returned: int) -> None:
    sent = int(environ.get("HTTP_X_AMZ_DECODED_CONTENT_LENGTH") or environ.get("CONTENT_LENGTH") or 0)
    tally = requests.setdefault(key, RequestTally())
    tally.count += 1
    tally.bytes_in += sent
    if key[1] == "dynamodb":
        # At least one unit a request; a write one per KB it sent, a read one per 4 KB it returned (strongly
        # consistent; AWS counts item sizes, not the request's JSON: an estimate, on the high side for writes).
        write = key[2] in DYNAMODB_WRITES
        units = max(1, math.ceil((sent if write else returned) / (1024 if write else 4096)))
        tally.units += units * (2 if key[2].startswith("Transact") else 1)


def metered_requests() -> dict[RequestKey, RequestTally]:
    """A copy of :data:`requests` (taken under the backend lock: the endpoint keeps counting)."""
    with backend_lock:
        return {k: RequestTally(t.count, t.bytes_in, t.units) for k, t in requests.items()}


# -- 8. the Distributed Map, as AWS runs it ------------------------------------------------------------------
SPEC_ATTRIBUTE = "mlops_map_spec"  # on moto's DistributedIterationComponent: the MapSpec its definition carried


def install_distributed_map() -> None:
    """Patch moto's ASL engine (idempotent): see 8. in this module's docstring."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval import (
        resource_eval_s3 as reader,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
        resource_eval_s3 as writer,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.result_writer_decl import (
        ResultWriter,
    )
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    if "asl_parse" in _original:
        return
    _original["result_writer"] = ResultWriter._eval_body
    ResultWriter._eval_body = _result_writer_on_state_input  # type: ignore[method-assign]
    _original["asl_parse"] = AmazonStateLanguageParser.parse
    _original["map_run"] = DistributedIterationComponent._map_run
    _original["list_objects"] = reader.ResourceEvalS3._handle_list_objects_v2
    _original["put_results"] = writer.ResourceEvalS3._handle_put_object
    AmazonStateLanguageParser.parse = staticmethod(_parse_distributed_maps)  # type: ignore[method-assign]
    DistributedIterationComponent._map_run = _map_run  # type: ignore[method-assign]
    reader.ResourceEvalS3._handle_list_objects_v2 = staticmethod(_list_all_objects)  # type: ignore[method-assign]
    writer.ResourceEvalS3._handle_put_object = staticmethod(_write_results)  # type: ignore[method-assign]


def uninstall_distributed_map() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval import (
        resource_eval_s3 as reader,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
        resource_eval_s3 as writer,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.result_writer_decl import (
        ResultWriter,
    )
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    if "asl_parse" not in _original:
        return
    ResultWriter._eval_body = _original.pop("result_writer")  # type: ignore[method-assign]
    AmazonStateLanguageParser.parse = staticmethod(_original.pop("asl_parse"))  # type: ignore[method-assign]
    DistributedIterationComponent._map_run = _original.pop("map_run")  # type: ignore[method-assign]
    reader.ResourceEvalS3._handle_list_objects_v2 = staticmethod(_original.pop("list_objects"))  # type: ignore[method-assign]
    writer.ResourceEvalS3._handle_put_object = staticmethod(_original.pop("put_results"))  # type: ignore[method-assign]


def _parse_distributed_maps(definition: str) -> Any:
    from mlops.local.distributed_map import split_definition

    try:
        raw = json.loads(definition)
    except ValueError:  # moto's parser reports what is wrong with it
        return _original["asl_parse"](definition)
    accepted, specs = split_definition(raw) if isinstance(raw, dict) else (raw, {})
    program, tree = _original["asl_parse"](json.dumps(accepted) if specs else definition)
    for path, spec in specs.items():
        setattr(_map_state(program, path).iteration_component, SPEC_ATTRIBUTE, spec)
    return program, tree


def _map_state(program: Any, path: tuple[str | int, ...]) -> Any:
    """The parsed state at ``path`` (state names, with a Parallel branch's index between them)."""
    states, state = program.states.states, None
    steps = list(path)
    while steps:
        state = states[steps.pop(0)]
        if steps and isinstance(steps[0], int):
            states = state.branches.programs[steps.pop(0)].states.states
        elif steps:
            states = state.iteration_component._states.states
    return state


def _list_all_objects(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
    """The ``s3:listObjectsV2`` ItemReader: every page of the listing, each object in AWS's item shape."""
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    from mlops.local.distributed_map import s3_item

    parameters = env.stack.pop()
    s3 = boto_client_for(region=resource_runtime_part.region, service="s3", state_credentials=state_credentials)
    pages = s3.get_paginator("list_objects_v2").paginate(**parameters)
    env.stack.append([s3_item(listed) for page in pages for listed in page.get("Contents", [])])


def _result_writer_on_state_input(self: Any, env: Any) -> None:
    """The ResultWriter's ``Parameters`` evaluated against the Map state's input, as AWS evaluates them (a run's
    own ``"Prefix.$": "$.…"``); moto evaluated them against the children's results on top of its stack."""
    results = env.stack.pop()
    env.stack.append(env.states.get_input())
    self.parargs.eval(env=env)
    parameters = env.stack.pop()
    env.stack.pop()  # the state's input
    env.stack.append(results)
    env.stack.append(parameters)
    self.resource_eval.eval_resource(env=env)


def _write_results(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
    """The ``s3:putObject`` ResultWriter: the Map Run's result files and manifest; the Map's output names them."""
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    from mlops.local.distributed_map import result_files

    parameters = env.stack.pop()
    results = env.stack.pop()
    run = getattr(results, "run", None)
    if run is None:  # a Map Run moto ran (none of ours): its own writer
        env.stack.append(results)
        env.stack.append(parameters)
        _original["put_results"](env, resource_runtime_part, state_credentials)
        return
    files, details = result_files(run, parameters["Bucket"], parameters.get("Prefix", ""))
    s3: Any = boto_client_for(region=resource_runtime_part.region, service="s3", state_credentials=state_credentials)
    for key, body in files.items():
        s3.put_object(Bucket=parameters["Bucket"], Key=key, Body=body)
    env.stack.append({"MapRunArn": run.map_run_arn, "ResultWriterDetails": details})


class MapRunResults(list[Any]):
    """A Map Run's outputs, carrying the run itself for its ResultWriter (moto hands the writer only the stack)."""

    run: Any = None


def _map_run(self: Any, env: Any, eval_input: Any) -> None:
    """A Distributed Map's Map Run as AWS runs it (moto's ran each item, swallowed failures as ``null`` outputs)."""
    from concurrent.futures import ThreadPoolExecutor as Pool

    from mlops.local import distributed_map as dmap

    spec: dmap.MapSpec = getattr(self, SPEC_ATTRIBUTE, None) or dmap.MapSpec()
    record = eval_input.map_run_record
    items = list(env.stack.pop())
    state_input = env.states.get_input()
    selected = [_select(env, eval_input, state_input, index, item) for index, item in enumerate(items)]
    batcher = spec.item_batcher
    if batcher is None:
        inputs, sizes = selected, [1] * len(selected)
    else:
        batch_input = batcher.get("BatchInput")
        if batch_input is not None:
            batch_input = dmap.resolve(batch_input, state_input, lambda path, data: _extract(env, path, data))
        inputs = dmap.batches(
            selected,
            max_items=batcher.get("MaxItemsPerBatch"),
            max_bytes=batcher.get("MaxInputBytesPerBatch"),
            batch_input=batch_input,
        )
        sizes = [len(batch["Items"]) for batch in inputs]
    children = [
        dmap.ChildRun(i, child_input, size) for i, (child_input, size) in enumerate(zip(inputs, sizes, strict=True))
    ]
    program = self._get_iteration_program()
    tally = threading.Lock()
    failed = [0]

    def exceeded() -> bool:
        return dmap.tolerance_exceeded(
            failed[0],
            len(items),
            count=eval_input.tolerated_failure_count,
            percentage=eval_input.tolerated_failure_percentage,
            spec=spec,
        )

    def run(child: dmap.ChildRun) -> None:
        with tally:
            if exceeded() or not env.is_running():  # AWS stops starting children once the Map Run has failed
                return
        record.item_counter.total.count()
        record.execution_counter.total.count()
        _run_child(env, program, child)
        with tally:
            if child.failed:
                failed[0] += child.items
                record.item_counter.failed.count()
                record.execution_counter.failed.count()
            else:
                record.item_counter.succeeded.count()
                record.execution_counter.succeeded.count()

    concurrency = record.max_concurrency or dmap.UNBOUNDED_CONCURRENCY
    with Pool(max_workers=max(1, min(concurrency, len(children) or 1)), thread_name_prefix="mlops-map-run") as pool:
        list(pool.map(run, children))
    if exceeded():
        raise _threshold_exceeded(env, failed[0], len(items))
    done = dmap.MapRun(record.map_run_arn, spec, children)
    results = MapRunResults(done.results())
    results.run = done
    env.stack.append(results)


def _select(env: Any, eval_input: Any, state_input: Any, index: int, item: Any) -> Any:
    """An item as its child receives it: through the Map's ItemSelector (or Parameters), with ``$$.Map.Item``."""
    from moto.stepfunctions.parser.asl.eval.states import ItemData, MapData

    selector = eval_input.item_selector or eval_input.parameters
    if selector is None:
        return item
    frame = env.open_inner_frame()
    try:
        frame.states.context_object.context_object_data["Map"] = MapData(Item=ItemData(Index=index, Value=item))
        frame.states.reset(input_value=state_input)
        frame.stack.append(state_input)
        selector.eval(frame)
        return frame.stack.pop()
    finally:
        env.delete_frame(frame)


def _extract(env: Any, path: str, data: Any) -> Any:
    from moto.stepfunctions.parser.asl.utils.json_path import extract_json

    if path.startswith("$$"):
        return extract_json(path[1:], env.states.context_object.context_object_data)
    return extract_json(path, data)


def _run_child(env: Any, program: Any, child: Any) -> None:
    """One child workflow execution, in a frame of the Map's environment: its output, or its error and cause."""
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramError, ProgramStopped
    from moto.stepfunctions.parser.asl.eval.states import ItemData, MapData

    from mlops.local.distributed_map import now

    frame = env.open_inner_frame()
    try:
        frame.states.context_object.context_object_data["Map"] = MapData(
            Item=ItemData(Index=child.index, Value=child.input)
        )
        frame.states.reset(input_value=child.input)
        program.eval(frame)
        end = frame.program_state()
        if isinstance(end, ProgramError | ProgramStopped):
            error = end.error if isinstance(end, ProgramError) else {"error": "States.Aborted"}
            child.error = str((error or {}).get("error") or "States.Runtime")
            child.cause = (error or {}).get("cause")
        else:
            child.output = frame.states.get_input()
    except Exception as err:  # noqa: BLE001 — moto's engine failing inside a child fails that child, not the run
        child.error, child.cause = "States.Runtime", f"{type(err).__name__}({err})"
    finally:
        child.stopped = now()
        env.delete_frame(frame)


def _threshold_exceeded(env: Any, failed: int, total: int) -> Exception:
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    from mlops.local.distributed_map import EXCEEDED_ERROR

    cause = f"The Map Run's tolerated failure threshold was exceeded: {failed} of {total} items failed."
    return FailureEventException(
        FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold),
            event_type=HistoryEventType.MapRunFailed,
            # moto's EventDetails is a TypedDict of every event's details, one of them set per event
            event_details=cast(Any, EventDetails)(
                mapRunFailedEventDetails=MapRunFailedEventDetails(error=EXCEEDED_ERROR, cause=cause)
            ),
        )
    )
