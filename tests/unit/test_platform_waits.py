"""How long the platform client waits, with a fake clock: a wait is a bound on liveness, and it outlasts the slowest
answer the platform gives by itself (a function's timeout plus one cold start's init), so a busy machine makes a
command slower, never wrong."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest

from mlops.infra.functions import SERVE_FUNCTION, TRIGGER_FUNCTION
from mlops.local.environments import INIT_TIMEOUT_S
from mlops.tools import platform as platform_module
from mlops.tools.platform import Platform, PlatformError

pytestmark = pytest.mark.unit


class FakeClock:
    """time.monotonic and time.sleep for the platform module: sleeping moves the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeMeta:
    """The runs table as the platform reads it: ``runs`` appear once the fake clock reaches ``appears_at``."""

    def __init__(self, clock: FakeClock, appears_at: float, runs: list[dict[str, Any]]) -> None:
        self.clock, self.appears_at, self._runs = clock, appears_at, runs

    def list_runs(self, model: str, limit: int = 20) -> list[dict[str, Any]]:
        return self._runs if self.clock.now >= self.appears_at else []

    def get_run(self, model: str, run_id: str) -> dict[str, Any] | None:
        return next((r for r in self.list_runs(model) if r["run_id"] == run_id), None)


def offline_platform() -> Platform:
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    outputs = {"ApiUrl": "http://127.0.0.1:9/live", "Models": "m", "LandingBucket": "landing"}
    return Platform(session=session, outputs=outputs, env="dev", endpoint="http://127.0.0.1:9", model_name="m")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(platform_module.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(platform_module.time, "sleep", fake.sleep)
    return fake


def with_runs(monkeypatch: pytest.MonkeyPatch, meta: FakeMeta) -> None:
    stores = type("FakeStores", (), {"meta": meta})()
    monkeypatch.setattr(Platform, "stores", property(lambda self: stores))


def test_given_a_trigger_that_cold_starts_slowly_then_run_for_upload_still_finds_its_run(monkeypatch, clock):
    """The trigger is invoked asynchronously; on a busy machine its cold start takes most of its init bound."""
    slowest = TRIGGER_FUNCTION.timeout_s + INIT_TIMEOUT_S - 1
    run = {"run_id": "r-1", "trigger": {"key": "m/a.csv", "etag": "e"}}
    with_runs(monkeypatch, FakeMeta(clock, appears_at=slowest, runs=[run]))
    assert offline_platform().run_for_upload("m/a.csv", "e") == "r-1"


def test_given_no_run_ever_starts_then_run_for_upload_gives_up_naming_the_upload(monkeypatch, clock):
    with_runs(monkeypatch, FakeMeta(clock, appears_at=float("inf"), runs=[]))
    with pytest.raises(PlatformError, match=r"no run started for s3://landing/m/a\.csv"):
        offline_platform().run_for_upload("m/a.csv", "e")


def test_given_the_serve_function_cold_starts_then_api_request_waits_longer_than_its_slowest_answer(monkeypatch):
    """The emulator answers within the serve function's timeout plus a cold start's init: a client that gives up
    sooner cuts off an answer that is only slow (the e2e test that timed out at 10 s under load)."""
    waited: list[float] = []

    class Answer(io.BytesIO):
        status = 200

    def urlopen(request: Any, timeout: float) -> Answer:
        waited.append(timeout)
        return Answer(json.dumps({"status": "ok"}).encode())

    monkeypatch.setattr("urllib.request.urlopen", urlopen)
    assert offline_platform().api_request("GET", "/health") == (200, {"status": "ok"})
    assert waited and waited[0] > SERVE_FUNCTION.timeout_s + INIT_TIMEOUT_S, waited


def cli_on(monkeypatch: pytest.MonkeyPatch, p: Platform) -> Any:
    """The CLI, against ``p`` (whose on-demand run request starts run r-1)."""
    from typer.testing import CliRunner

    from mlops.tools import cli

    monkeypatch.setattr(cli, "platform", lambda *args, **kwargs: p)
    monkeypatch.setattr(Platform, "request_run", lambda self, **kwargs: {"status": "started", "run_id": "r-1"})
    runner = CliRunner()
    return lambda *args: runner.invoke(cli.app, list(args))


def test_given_a_run_longer_than_the_wait_then_mlops_run_says_it_goes_on_and_how_to_follow_it(monkeypatch, clock):
    """It always gave up at 900 s with a bare 'still RUNNING' and exit 1, as if the run had failed."""
    running = {"run_id": "r-1", "status": "RUNNING", "steps": {"extract": {"status": "SUCCEEDED"}}}
    with_runs(monkeypatch, FakeMeta(clock, appears_at=0, runs=[running]))
    mlops = cli_on(monkeypatch, offline_platform())
    out = mlops("run", "--timeout", "1200")
    assert out.exit_code == 3, out.output
    assert "run r-1 is still RUNNING after 1200s: it goes on without this command" in out.output
    assert "mlops runs watch r-1 --model m" in out.output and "mlops runs show r-1 --model m" in out.output
    assert 1200 <= clock.now < 1202  # it waited as long as it was told, not 900 s
    as_json = mlops("run", "--timeout", "60", "--json")
    assert as_json.exit_code == 3
    assert json.loads(as_json.output) == {"run_id": "r-1", "status": "RUNNING", "still_running": True, "waited_s": 60}


def test_given_a_run_still_going_then_mlops_runs_watch_follows_it_to_its_end(monkeypatch, clock):
    steps = {"extract": {"status": "SUCCEEDED", "duration_s": 1.0}}
    run = {"run_id": "r-1", "status": "RUNNING", "steps": steps, "trigger": {"reason": "cli"}}

    class Finishing(FakeMeta):
        def get_run(self, model: str, run_id: str) -> dict[str, Any] | None:
            return {**run, "status": "SUCCEEDED"} if self.clock.now >= 2000 else run

    with_runs(monkeypatch, Finishing(clock, appears_at=0, runs=[run]))
    out = cli_on(monkeypatch, offline_platform())("runs", "watch", "r-1", "--timeout", "0")
    assert out.exit_code == 0, out.output
    assert "extract" in out.output and "run r-1: SUCCEEDED" in out.output
    assert clock.now >= 2000  # --timeout 0: until the run ends


def test_given_an_asynchronous_invocation_that_cold_starts_then_draining_waits_for_it(monkeypatch):
    """seams.drain (the emulator's stop, and tests) gave in-flight invocations 30 s: less than a cold start."""
    from mlops.infra.functions import ALL_FUNCTIONS
    from mlops.local import seams

    waited: list[float] = []

    class InFlight:
        def result(self, timeout: float) -> None:
            waited.append(timeout)

    monkeypatch.setattr(seams, "_pending", [InFlight()])
    seams.drain()
    slowest = max(f.timeout_s for f in ALL_FUNCTIONS if f.name in ("trigger", "capture"))  # invoked asynchronously
    assert waited and waited[0] > slowest + INIT_TIMEOUT_S, waited
