"""Lambda execution environments offline: one process per environment, limits enforced as Lambda does.

* **Isolation.** Each invocation runs in a worker process (:mod:`mlops.local.worker`) that stands for one
  execution environment of one function. A native crash, running out of memory or past the timeout
  ends that environment and fails that invocation — never the emulator.
* **Warm reuse and scale-out.** An environment that answered is kept and reused; concurrent
  invocations of one function get environments of their own, as Lambda scales out.
* **Cold starts as in Lambda.** A worker is a fresh interpreter that imports only what its handler
  imports, so its memory is what the function's bundle costs, and "does this step fit in its Lambda?"
  is answered offline: the resident memory (``/proc/<pid>/status``, Linux) is watched during an
  invocation against the function's ``MemorySize``, and the clock against its ``Timeout``.
* **One clock.** Each invocation carries the emulated clock's offset (``mlops local tick --advance``), and the
  worker sets it before the handler runs: a handler's :func:`mlops.core.clock.utcnow` is the emulator's.
* **Lambda's error shapes.** ``Sandbox.Timedout`` ("Task timed out after N seconds"),
  ``Runtime.OutOfMemory`` and ``Runtime.ExitError`` ("Runtime exited with error: signal: aborted"), as a
  function error, so Step Functions' Retry and Catch see what they would see in AWS.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mlops.core import clock
from mlops.local.worker import read_frame, write_frame

POLL_S = 0.02
INIT_TIMEOUT_S = 120.0  # a cold start that cannot import its handler in this long is broken, not slow
CALLER_PREFIX = "fn."  # AWS_SDK_UA_APP_ID of a function's environment: fn.<handler> (see seams.requests)


@dataclass(frozen=True)
class FunctionConfig:
    """What an environment needs to know of its function (from the synthesized template)."""

    physical_name: str
    handler: str  # folder under functions/
    env: dict[str, str]
    timeout_s: int
    memory_mb: int
    log_group: str = ""  # where its log lines go (CloudWatch Logs)


@dataclass
class Outcome:
    payload: Any
    error: bool
    duration_ms: float
    cold: bool
    max_rss_mb: float = 0.0
    logs: list[str] = field(default_factory=list)  # what the function wrote to stdout (its log lines)
    # What Lambda bills (a cold start's init, since 2025-08, and the handler's time), as the environment measured
    # them: wall time, and CPU time (user + system, every thread), which other work on the machine does not stretch.
    init_ms: float = 0.0  # of duration_ms, the cold start's init
    handler_ms: float = 0.0
    init_cpu_ms: float = 0.0
    cpu_ms: float = 0.0


@dataclass
class _Environment:
    proc: subprocess.Popen[bytes]
    pid: int
    invocations: int = 0
    peak_rss_mb: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def stdin(self) -> IO[bytes]:
        assert self.proc.stdin is not None
        return self.proc.stdin

    @property
    def stdout(self) -> IO[bytes]:
        assert self.proc.stdout is not None
        return self.proc.stdout


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MB (None where /proc is not available)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Environments:
    """The execution environments of every function, started on demand and reused while warm."""

    def __init__(self, base_env: dict[str, str], log_dir: Path | None = None) -> None:
        self._base_env = dict(base_env)
        self._log_dir = log_dir
        self._idle: dict[str, list[_Environment]] = {}
        self._all: list[_Environment] = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def base_env(self) -> dict[str, str]:
        """The environment every process starts from (the emulator's endpoint, credentials, import path)."""
        return dict(self._base_env)

    # -- lifecycle --------------------------------------------------------------------
    def _start(self, fn: FunctionConfig) -> _Environment:
        env = {**self._base_env, **fn.env, "AWS_LAMBDA_FUNCTION_NAME": fn.physical_name}
        env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(fn.memory_mb)
        # Its AWS calls name it in their User-Agent (app/fn.<handler>): the endpoint meters them per function.
        env["AWS_SDK_UA_APP_ID"] = f"{CALLER_PREFIX}{fn.handler}"
        stderr: Any = subprocess.DEVNULL
        if self._log_dir is not None:
            self._log_dir.mkdir(parents=True, exist_ok=True)
            stderr = open(self._log_dir / f"{fn.handler}.log", "ab")  # noqa: SIM115 - owned by the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlops.local.worker", fn.handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
        if stderr is not subprocess.DEVNULL:
            stderr.close()
        environment = _Environment(proc, proc.pid)
        with self._lock:
            self._all.append(environment)
        return environment

    def _take(self, fn: FunctionConfig) -> tuple[_Environment, bool]:
        with self._lock:
            if self._closed:
                raise RuntimeError("the emulator is stopping")
            idle = self._idle.setdefault(fn.handler, [])
            while idle:
                environment = idle.pop()
                if environment.proc.poll() is None:
                    return environment, False
        return self._start(fn), True

    def _give_back(self, fn: FunctionConfig, environment: _Environment) -> None:
        with self._lock:
            if not self._closed:
                self._idle.setdefault(fn.handler, []).append(environment)
                return
        self._kill(environment)

    def _kill(self, environment: _Environment) -> None:
        if environment.proc.poll() is None:
            environment.proc.kill()
        environment.proc.wait()
        for stream in (environment.proc.stdin, environment.proc.stdout):
            if stream is not None:
                stream.close()
        with self._lock:
            if environment in self._all:
                self._all.remove(environment)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            everything = list(self._all)
            self._idle.clear()
        for environment in everything:
            self._kill(environment)

    def reclaim_idle(self) -> int:
        """Stop every idle environment, as Lambda reclaims them after minutes without work: the next invocation of
        each function cold-starts (an hourly schedule's always does in AWS). Returns how many were stopped."""
        with self._lock:
            idle = [e for environments in self._idle.values() for e in environments]
            self._idle.clear()
        for environment in idle:
            self._kill(environment)
        return len(idle)

    def count(self, handler: str | None = None) -> int:
        """Live environments (of one function, or all)."""
        with self._lock:
            if handler is None:
                return len(self._all)
            return len(self._idle.get(handler, []))

    # -- invocation -------------------------------------------------------------------------
    def invoke(self, fn: FunctionConfig, event: Any, chaos: str | None = None) -> Outcome:
        """One invocation with Lambda's semantics; never raises for what happens inside the function."""
        request_id = str(uuid.uuid4())
        t0 = time.monotonic()
        environment, cold = self._take(fn)
        deadline = t0 + fn.timeout_s + (INIT_TIMEOUT_S if cold else 0.0)
        init_ms = init_cpu_ms = 0.0
        if cold:
            ready = self._await(environment, fn, deadline, request_id)
            if isinstance(ready, Outcome):
                return ready
            init_ms, init_cpu_ms = (time.monotonic() - t0) * 1000, float(ready.get("init_cpu_ms") or 0.0)
        request = {
            "event": event,
            "function_name": fn.physical_name,
            "timeout_s": fn.timeout_s,
            "memory_mb": fn.memory_mb,
            "request_id": request_id,
            "chaos": chaos,
            "clock_offset_s": clock.offset_s(),  # the emulated clock, read by the handler as its own (mlops.core.clock)
        }
        try:
            write_frame(environment.stdin, request)
        except (BrokenPipeError, OSError):
            return self._died(environment, fn, request_id, t0, cold)
        deadline = time.monotonic() + fn.timeout_s
        answer = self._await(environment, fn, deadline, request_id)
        if isinstance(answer, Outcome):
            return answer
        environment.invocations += 1
        self._give_back(fn, environment)
        return Outcome(
            answer["payload"],
            bool(answer["error"]),
            (time.monotonic() - t0) * 1000,
            cold,
            environment.peak_rss_mb,
            list(answer.get("logs") or []),
            init_ms,
            float(answer.get("handler_ms") or 0.0),
            init_cpu_ms,
            float(answer.get("cpu_ms") or 0.0),
        )

    def _await(self, environment: _Environment, fn: FunctionConfig, deadline: float, request_id: str) -> Any:
        """The next frame from the environment, watching its clock and memory; an Outcome if it failed."""
        t0 = time.monotonic()
        fd = environment.stdout.fileno()
        while True:
            readable, _, _ = select.select([fd], [], [], POLL_S)
            if readable:
                frame = read_frame(environment.stdout)
                if frame is None:
                    return self._died(environment, fn, request_id, t0, False)
                return frame
            rss = rss_mb(environment.pid)
            if rss is not None:
                environment.peak_rss_mb = max(environment.peak_rss_mb, rss)
                if rss > fn.memory_mb:
                    self._kill(environment)
                    return _failure(
                        "Runtime.OutOfMemory",
                        f"RequestId: {request_id} Error: Runtime exited with error: signal: killed "
                        f"(memory {rss:.0f} MB above the function's {fn.memory_mb} MB)",
                        request_id,
                        t0,
                        rss,
                    )
            if environment.proc.poll() is not None:
                return self._died(environment, fn, request_id, t0, False)
            if time.monotonic() > deadline:
                self._kill(environment)
                return _failure(
                    "Sandbox.Timedout",
                    f"RequestId: {request_id} Error: Task timed out after {fn.timeout_s:.2f} seconds",
                    request_id,
                    t0,
                )

    def _died(self, environment: _Environment, fn: FunctionConfig, request_id: str, t0: float, cold: bool) -> Outcome:
        code = environment.proc.wait()
        self._kill(environment)
        if code < 0:
            name = signal.Signals(-code).name.removeprefix("SIG").lower()
            reason = {"abrt": "aborted", "segv": "segmentation fault", "kill": "killed"}.get(name, name)
            detail = f"signal: {reason}"
        else:
            detail = f"exit status {code}"
        return _failure(
            "Runtime.ExitError", f"RequestId: {request_id} Error: Runtime exited with error: {detail}", request_id, t0
        )


def _failure(error_type: str, message: str, request_id: str, t0: float, rss: float = 0.0) -> Outcome:
    payload = {"errorType": error_type, "errorMessage": message, "requestId": request_id, "stackTrace": []}
    return Outcome(payload, True, (time.monotonic() - t0) * 1000, False, rss)


def base_environment() -> dict[str, str]:
    """What every execution environment inherits from the emulator: the endpoint, credentials, region and
    the process basics (PATH, PYTHONPATH, HOME); each function's own variables are added on top."""
    keep = ("PATH", "PYTHONPATH", "HOME", "LANG", "TMPDIR", "VIRTUAL_ENV")
    prefixes = ("AWS_", "POWERTOOLS_", "MLOPS_", "OPENBLAS_")
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith(prefixes)}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass(frozen=True)
class ContainerOutcome:
    """How a container stopped, as ECS describes it: its exit code, and the reason ECS gives where it killed it."""

    exit_code: int
    reason: str  # the container's (ECS: "OutOfMemoryError: Container killed due to memory usage"), or ""
    duration_s: float
    peak_rss_mb: float
    output: list[str]


OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"


def run_container(
    base_env: dict[str, str],
    command: list[str],
    env: dict[str, str],
    memory_mb: int,
    timeout_s: float | None = None,
) -> ContainerOutcome:
    """An ECS task's one container offline: its command (``python -m <module>``) in a process of its own with the
    task's environment, at the emulated clock (:mod:`mlops.local.container`), its resident memory watched against
    the task's ``memory_mb`` — past it the process is killed as Fargate's OOM killer does (exit code 137) — and, with
    ``timeout_s``, killed past it. What it prints is its log."""
    if command[:2] != ["python", "-m"]:
        raise ValueError(f"the emulator runs a container whose command is python -m <module>, not {command}")
    argv = [sys.executable, "-m", "mlops.local.container", str(clock.offset_s()), *command[2:]]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**base_env, **env})
    stream = proc.stdout
    assert stream is not None
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(line.decode(errors="replace") for line in stream))
    reader.start()
    peak, reason, killed = 0.0, "", False
    while proc.poll() is None:
        rss = rss_mb(proc.pid)
        if rss is not None:
            peak = max(peak, rss)
            if rss > memory_mb:
                proc.kill()
                reason, killed = OOM_REASON, True
                break
        if timeout_s is not None and time.monotonic() - t0 > timeout_s:
            proc.kill()
            reason, killed = f"Task timed out after {timeout_s:.0f} seconds", True
            break
        time.sleep(POLL_S)
    code = proc.wait()
    reader.join()
    return ContainerOutcome(
        137 if killed or code == -signal.SIGKILL else code, reason, time.monotonic() - t0, peak, output
    )
