"""Lambda execution environments offline: a crash, memory or a hang fails that invocation, never the caller."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from mlops.local.environments import Environments, FunctionConfig, base_environment

pytestmark = pytest.mark.functional

EVENT = {"hello": "world"}  # the trigger refuses it: an ordinary function error, from inside the handler


@pytest.fixture
def environments(tmp_path):
    envs = Environments(base_environment(), tmp_path / "logs")
    yield envs
    envs.close()


def _fn(timeout_s: int = 30, memory_mb: int = 512) -> FunctionConfig:
    return FunctionConfig("Mlops-test-Trigger", "trigger", {"MLOPS_FUNCTION": "trigger"}, timeout_s, memory_mb)


def test_given_a_native_abort_then_that_invocation_fails_as_lambda_reports_it_and_the_next_one_runs(environments):
    crashed = environments.invoke(_fn(), EVENT, chaos="abort")
    assert crashed.error and crashed.payload["errorType"] == "Runtime.ExitError"
    assert "Runtime exited with error: signal: aborted" in crashed.payload["errorMessage"]
    after = environments.invoke(_fn(), EVENT)
    assert after.cold and after.error and after.payload["errorType"] == "RuntimeError"  # the handler's own error


def test_given_a_function_past_its_memory_then_it_is_killed_as_out_of_memory(environments):
    out = environments.invoke(_fn(memory_mb=400), EVENT, chaos="oom")
    assert out.error and out.payload["errorType"] == "Runtime.OutOfMemory"
    assert "above the function's 400 MB" in out.payload["errorMessage"] and out.max_rss_mb > 400


def test_given_a_function_past_its_timeout_then_it_times_out_as_lambda_does(environments):
    environments.invoke(_fn(timeout_s=1), EVENT)  # warm, so the timeout counts from the invocation alone
    t0 = time.monotonic()
    out = environments.invoke(_fn(timeout_s=1), EVENT, chaos="hang")
    assert out.error and out.payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in out.payload["errorMessage"]
    assert 1.0 <= time.monotonic() - t0 < 10


def test_given_invocations_then_environments_are_reused_warm_and_scaled_out_when_concurrent(environments):
    first, second = environments.invoke(_fn(), EVENT), environments.invoke(_fn(), EVENT)
    assert first.cold and not second.cold
    with ThreadPoolExecutor(3) as pool:
        outcomes = list(pool.map(lambda _: environments.invoke(_fn(), EVENT, chaos="slow"), range(3)))
    assert sum(o.cold for o in outcomes) >= 2  # one warm environment, the others started beside it
    assert environments.count("trigger") >= 3


def test_given_idle_environments_when_reclaimed_then_the_next_invocation_cold_starts_and_reports_what_lambda_bills(
    environments,
):
    """#33: benchmarks.cost bills an invocation's CPU time (the handler's, and a cold start's init), which other work
    on the machine does not stretch as it does wall time; an hourly schedule meets a reclaimed environment."""
    cold = environments.invoke(_fn(), EVENT)
    warm = environments.invoke(_fn(), EVENT)
    assert cold.cold and cold.init_cpu_ms > 0 and cold.init_ms > 0
    assert not warm.cold and warm.init_ms == warm.init_cpu_ms == 0 and warm.cpu_ms > 0 and warm.handler_ms > 0
    assert warm.handler_ms <= warm.duration_ms  # the round trip holds the handler's own time
    assert environments.reclaim_idle() == 1 and environments.count("trigger") == 0
    assert environments.invoke(_fn(), EVENT).cold
