"""One clock offline (#27, findings 4 and 5 and the alarm history), end to end on the emulator.

The emulator's clock runs ahead of the wall clock by what ``mlops local tick --advance`` (or ``tick(advance_s=…)``)
has moved it, and every process tells the time by it: the serve function stamping captures, the monitor choosing
its window, the trigger keeping the alarm cooldown. Alarms are evaluated at the time the tick's scheduled targets
have caught up with, so a slow monitor never lets an alarm see its newest period empty.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from mlops.local import seams
from mlops.local.emulator import LocalCloud
from mlops.tools.cli import app
from mlops.tools.platform import TERMINAL, Platform
from mlops.tools.samples import bundled
from tests.conftest import quick_config_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HOUR = 3600
DATA = bundled("breast-cancer").sample(frac=1.0, random_state=3).reset_index(drop=True)
FEATURES = DATA.drop(columns=["target"])
LONG = 600  # a bound on liveness (a run, a held tick on a busy machine), never a latency check


@contextmanager
def champion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **sections: Any) -> Iterator[tuple[LocalCloud, Platform]]:
    """An emulator of the quick example (``sections`` replaced) whose champion v1 was trained on 400 rows."""
    monkeypatch.setenv("MLOPS_MODEL_CACHE_SECONDS", "1")
    with LocalCloud(quick_config_file(tmp_path, **sections), port=0) as cloud:
        p = Platform.connect("dev", cloud.endpoint)
        up = p.upload(DATA.iloc[:400].to_csv(index=False).encode(), "breast-cancer/v1.csv")
        run_id = p.run_for_upload(up["key"], up["etag"])
        run = p.wait(run_id, timeout=LONG, until={"WAITING_APPROVAL", *TERMINAL})
        if run["status"] == "WAITING_APPROVAL":
            p.promote(1, reason="the first model", actor="e2e")
            run = p.wait(run_id, timeout=LONG)
        assert run["status"] == "SUCCEEDED", run
        assert p.champion() == 1
        yield cloud, p


def predict(p: Platform, frame: pd.DataFrame, batch: int = 50) -> None:
    for i in range(0, len(frame), batch):
        req = urllib.request.Request(
            p.output("ApiUrl") + "/predict",
            data=json.dumps({"records": frame.iloc[i : i + batch].to_dict("records")}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=LONG) as resp:
            assert resp.status == 200


def drifted(frame: pd.DataFrame) -> pd.DataFrame:
    """Upstream changed units on a handful of size features: values 60 % larger."""
    out = frame.copy()
    for col in ("mean_radius", "mean_perimeter", "mean_area", "worst_radius", "worst_perimeter", "worst_area"):
        out[col] = out[col] * 1.6
    return out


def latest_monitor(p: Platform) -> dict[str, Any]:
    summary = p.latest_monitor()
    assert summary is not None
    return summary


def monitor_rule(p: Platform) -> str:
    """The monitor's hourly schedule (the model's own rule)."""
    rules = p.client("events").list_rules()["Rules"]
    (name,) = [r["Name"] for r in rules if r.get("ScheduleExpression") == "rate(1 hour)"]
    return str(name)


def alarm_runs(p: Platform) -> list[dict[str, Any]]:
    return [r for r in p.runs(50) if (r.get("trigger") or {}).get("reason") == "alarm"]


def breach(cloud: LocalCloud, p: Platform) -> None:
    """Two judged hourly windows, each with six drifted features, the newer ending now (the emulated clock)."""
    now = cloud.now()
    p.client("cloudwatch").put_metric_data(
        Namespace="ServerlessMLOps",
        MetricData=[
            {
                "MetricName": "DriftedFeatures",
                "Dimensions": [{"Name": "Model", "Value": "breast-cancer"}],
                "Timestamp": now - delta,
                "Value": 6.0,
            }
            for delta in (timedelta(minutes=70), timedelta(minutes=10))
        ],
    )


def test_given_the_clock_advanced_a_day_then_the_scheduled_monitor_and_monitor_run_judge_the_traffic_served_since(
    tmp_path, monkeypatch
):
    """Finding 4: captures were stamped by the wall clock and the scheduled monitor's window ended at the emulated
    clock: after `tick --advance 24h` it judged "0 captured records" while `mlops monitor run` judged them all."""
    with champion(tmp_path, monkeypatch) as (cloud, p):
        out = CliRunner().invoke(app, ["local", "tick", "--advance", "24h", "--endpoint", cloud.endpoint])
        assert out.exit_code == 0, out.output
        predict(p, FEATURES.iloc[:150])
        cloud.tick(rule_name=monitor_rule(p))  # the schedule fires now; captures in flight land first
        scheduled = latest_monitor(p)
        assert scheduled["status"] == "judged" and scheduled["records"] == 150, scheduled
        on_demand = CliRunner().invoke(app, ["monitor", "run", "--json", "--endpoint", cloud.endpoint])
        assert on_demand.exit_code == 0, on_demand.output
        judged = latest_monitor(p)
        assert judged["status"] == "judged" and judged["records"] == 150, judged
        assert judged["window"]["end"] >= scheduled["window"]["end"]  # the same clock: a later end, not a day apart


def test_given_an_alarm_run_when_the_clock_moves_past_the_cooldown_then_a_second_alarm_starts_a_second_run(tmp_path):
    """Finding 4: the cooldown was kept by the wall clock, so no `--advance` could expire it."""
    with LocalCloud(quick_config_file(tmp_path), port=0) as cloud:
        p = Platform.connect("dev", cloud.endpoint)
        drift = p.alarm_name("DriftAlarm")
        cw = p.client("cloudwatch")
        breach(cloud, p)
        cloud.evaluate_alarms()
        seams.drain(timeout=LONG)
        (first,) = alarm_runs(p)
        assert first["trigger"]["alarm"] == drift
        p.wait(first["run_id"], timeout=LONG)  # no data under the prefix: it ends quickly, whatever its status
        # Inside the cooldown (24 h): a new ALARM transition starts nothing.
        cw.set_alarm_state(AlarmName=drift, StateValue="OK", StateReason="e2e reset")
        cloud.evaluate_alarms()
        seams.drain(timeout=LONG)
        assert cw.describe_alarms(AlarmNames=[drift])["MetricAlarms"][0]["StateValue"] == "ALARM"
        assert len(alarm_runs(p)) == 1
        # A day and an hour later (the emulated clock): the cooldown has expired, and the next ALARM is a run.
        cloud.tick(advance_s=25 * HOUR)
        cw.set_alarm_state(AlarmName=drift, StateValue="OK", StateReason="e2e reset")
        breach(cloud, p)
        cloud.evaluate_alarms()
        seams.drain(timeout=LONG)
        assert len(alarm_runs(p)) == 2, [r["trigger"] for r in alarm_runs(p)]


def test_given_a_slow_monitor_when_every_window_breaches_then_the_alarm_never_drops_to_ok_and_alarms_once(
    tmp_path, monkeypatch
):
    """Finding 5: a tick moved the clock before its monitor ran, and an evaluation in between saw the newest period
    empty: OK, then ALARM again, and a second ALARM at the trigger. Here the monitor of the third window is held
    while the alarms are evaluated (as the emulator's background evaluator does every few seconds)."""
    with champion(tmp_path, monkeypatch, registry={"approval": "manual"}) as (cloud, p):
        drift = p.alarm_name("DriftAlarm")
        predict(p, drifted(FEATURES.iloc[:300]))
        cloud.tick(advance_s=HOUR)
        cloud.tick(advance_s=HOUR)
        alarmed = [c for c in cloud.alarm_changes if c["alarm"] == drift]
        assert [c["to"] for c in alarmed] == ["ALARM"], alarmed
        (run,) = alarm_runs(p)  # the ALARM reached the trigger; its run waits for approval, v1 keeps serving
        triggered = [i for i in seams.invocations if i.handler == "trigger" and not i.warm_up]

        held = seams.hold_next("monitor")
        ticking = threading.Thread(target=cloud.tick, kwargs={"advance_s": HOUR})
        ticking.start()
        try:
            assert held.started.wait(LONG), "the third window's monitor never started"
            during = cloud.evaluate_alarms()  # the monitor is still at work on the new window
        finally:
            held.release.set()
            ticking.join(LONG)
        assert not ticking.is_alive()
        assert latest_monitor(p)["drifted"] is True  # the third window breaches too

        assert [c for c in during if c["alarm"] == drift] == []
        assert [c["to"] for c in cloud.alarm_changes if c["alarm"] == drift] == ["ALARM"], cloud.alarm_changes
        assert p.client("cloudwatch").describe_alarms(AlarmNames=[drift])["MetricAlarms"][0]["StateValue"] == "ALARM"
        seams.drain(timeout=LONG)
        after = [i for i in seams.invocations if i.handler == "trigger" and not i.warm_up]
        assert len(after) == len(triggered)  # no second ALARM reached the trigger
        assert [r["run_id"] for r in alarm_runs(p)] == [run["run_id"]]


def test_given_alarm_changes_between_ticks_then_mlops_local_tick_prints_each_once(tmp_path):
    """`mlops local tick` printed only the changes its own evaluation made; the emulator's background evaluation
    made most of them. Now it prints every state change since the previous tick (from the alarm history)."""
    with LocalCloud(quick_config_file(tmp_path, monitoring={"retrain_on_alarm": False}), port=0) as cloud:
        p = Platform.connect("dev", cloud.endpoint)
        drift = p.alarm_name("DriftAlarm")
        breach(cloud, p)
        assert [c["to"] for c in cloud.evaluate_alarms() if c["alarm"] == drift] == ["ALARM"]  # the emulator's
        history = p.client("cloudwatch").describe_alarm_history(AlarmName=drift, HistoryItemType="StateUpdate")
        assert json.loads(history["AlarmHistoryItems"][0]["HistoryData"])["newState"]["stateValue"] == "ALARM"

        first = CliRunner().invoke(app, ["local", "tick", "--advance", "1m", "--endpoint", cloud.endpoint])
        assert first.exit_code == 0, first.output
        assert f"alarm {drift}: OK → ALARM" in first.output, first.output
        second = CliRunner().invoke(app, ["local", "tick", "--advance", "1m", "--endpoint", cloud.endpoint])
        assert second.exit_code == 0, second.output
        assert drift not in second.output, second.output  # reported once
