"""End to end, offline: served traffic → capture → monitor → CloudWatch alarm → retraining run.

The same path as in AWS: predictions over HTTP are logged by the serve function, the log's subscription
filter hands them to the capture function (S3), the monitor runs on its EventBridge schedule
(``tick(advance_s=3600)``: one emulated hour), publishes metrics, and the synthesized alarms are evaluated
against them; their state change reaches the trigger through the synthesized EventBridge rule.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlops.local.emulator import LocalCloud
from mlops.tools.platform import LIVENESS_S, Platform
from mlops.tools.samples import bundled
from tests.conftest import quick_config_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HOUR = 3600
DATA = bundled("breast-cancer").sample(frac=1.0, random_state=3).reset_index(drop=True)
FEATURES = DATA.drop(columns=["target"])


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[LocalCloud, Platform]]:
    """An emulator whose champion (v1, one candidate: the monitoring, not the tuning, is under test) was trained on
    the first 400 rows."""
    monkeypatch.setenv("MLOPS_MODEL_CACHE_SECONDS", "1")
    with LocalCloud(quick_config_file(tmp_path), port=0) as cloud:
        p = Platform.connect("dev", cloud.endpoint)
        up = p.upload(DATA.iloc[:400].to_csv(index=False).encode(), "breast-cancer/v1.csv")
        assert p.wait(p.run_for_upload(up["key"], up["etag"]), timeout=300)["status"] == "SUCCEEDED"
        assert p.champion() == 1
        yield cloud, p


def post(p: Platform, path: str, body: Any) -> tuple[int, Any]:
    """Plain HTTP to the local API Gateway, as curl would."""
    req = urllib.request.Request(
        p.output("ApiUrl") + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=LIVENESS_S) as resp:  # a cold start may take a while
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def predict(p: Platform, frame: pd.DataFrame, batch: int = 50) -> list[dict[str, Any]]:
    answers = []
    for i in range(0, len(frame), batch):
        status, body = post(p, "/predict", {"records": frame.iloc[i : i + batch].to_dict("records")})
        assert status == 200, body
        answers.append(body)
    return answers


def describe_alarm(p: Platform, output: str) -> dict[str, Any]:
    """The alarm as ``aws cloudwatch describe-alarms`` shows it at the local endpoint."""
    name = p.alarm_name(output.removesuffix("Name"))
    aws = Path(sys.executable).parent / "aws"
    if aws.exists():
        out = subprocess.run(
            [
                str(aws),
                "--endpoint-url",
                p.endpoint or "",
                "--region",
                "us-east-1",
                "cloudwatch",
                "describe-alarms",
                "--alarm-names",
                name,
            ],
            check=True,
            capture_output=True,
            text=True,
            env={"AWS_ACCESS_KEY_ID": "offline", "AWS_SECRET_ACCESS_KEY": "offline", "PATH": str(aws.parent)},
        ).stdout
        (alarm,) = json.loads(out)["MetricAlarms"]
    else:
        (alarm,) = p.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return dict(alarm)


def alarm_runs(p: Platform) -> list[dict[str, Any]]:
    return [r for r in p.runs(50) if (r.get("trigger") or {}).get("reason") == "alarm"]


def latest_monitor(p: Platform) -> dict[str, Any]:
    body = p.client("s3").get_object(Bucket=p.output("ArtifactBucket"), Key="monitoring/breast-cancer/latest.json")
    return dict(json.loads(body["Body"].read()))


def drifted(frame: pd.DataFrame) -> pd.DataFrame:
    """Upstream changed units on a handful of size features: values 60 % larger."""
    out = frame.copy()
    for col in ("mean_radius", "mean_perimeter", "mean_area", "worst_radius", "worst_perimeter", "worst_area"):
        out[col] = out[col] * 1.6
    return out


def test_given_drifted_traffic_when_two_hourly_windows_drift_then_the_alarm_starts_one_run_and_a_second_alarm_none(
    served,
):
    cloud, p = served
    # Normal traffic: judged, stable.
    predict(p, FEATURES.iloc[400:560])
    cloud.tick(advance_s=HOUR)
    first = latest_monitor(p)
    assert first["judged"] and first["records"] == 160 and first["drifted"] is False, first
    # No labels yet, and the window's accuracy is already estimated (from calibrated probabilities), with its band.
    estimated = first["estimate"]
    assert estimated["rows"] == 160 and "realized" not in estimated
    assert 0.85 < estimated["accuracy_band"][0] <= estimated["accuracy"] <= estimated["accuracy_band"][1] <= 1
    assert first["metrics"]["EstimatedAccuracy"] == round(estimated["accuracy"], 6) and estimated["roc_auc"] > 0.9
    # …against the champion's test accuracy: the estimated-quality alarm's metric, within its margin here
    assert first["metrics"]["EstimatedShortfall"] == estimated["shortfall"] <= estimated["margin"]
    assert estimated["shortfall"] == round(estimated["champion"] - estimated["accuracy"], 6)
    assert not estimated["degraded"]
    assert describe_alarm(p, "DriftAlarmName")["StateValue"] != "ALARM"
    # Drifted traffic: the window drifts; one breaching window is not enough (alarm_windows: 2).
    predict(p, drifted(FEATURES.iloc[:300]))
    cloud.tick(advance_s=HOUR)
    second = latest_monitor(p)
    assert second["drifted"] is True and "mean_area" in second["drift"]["drifted"], second["drift"]
    assert describe_alarm(p, "DriftAlarmName")["StateValue"] != "ALARM"
    assert alarm_runs(p) == []
    # The second consecutive drifted window: ALARM, as the AWS CLI sees it, and exactly one run, reason "alarm".
    cloud.tick(advance_s=HOUR)
    alarm = describe_alarm(p, "DriftAlarmName")
    assert alarm["StateValue"] == "ALARM", alarm
    assert "2 out of the last 2 datapoints" in alarm["StateReason"]
    runs = alarm_runs(p)
    assert len(runs) == 1, runs
    assert runs[0]["trigger"]["alarm"] == alarm["AlarmName"]
    run = p.wait(runs[0]["run_id"], timeout=300)
    assert run["status"] in ("SUCCEEDED", "REJECTED"), run
    # A second alarm inside the cooldown: whichever model serves now gets drifted traffic for two windows
    # (a new champion starts with no judged window: its alarm went back to OK); ALARM again, no second run.
    p.client("cloudwatch").set_alarm_state(AlarmName=alarm["AlarmName"], StateValue="OK", StateReason="e2e reset")
    champion = p.champion()
    time.sleep(1.2)  # MLOPS_MODEL_CACHE_SECONDS=1: past it, the next request re-reads the alias, however busy
    assert predict(p, FEATURES.iloc[:1])[0]["model_version"] == champion
    predict(p, drifted(FEATURES.iloc[:300]))
    cloud.tick(advance_s=HOUR)
    cloud.tick(advance_s=HOUR)
    assert describe_alarm(p, "DriftAlarmName")["StateValue"] == "ALARM"
    time.sleep(1)
    assert len(alarm_runs(p)) == 1


def test_given_wrong_live_labels_then_the_quality_alarm_fires_and_a_small_window_judges_nothing(served, tmp_path):
    cloud, p = served
    # Too few requests: the window is not judged, and no judgement metric is published.
    predict(p, FEATURES.iloc[400:420])
    cloud.tick(advance_s=HOUR)
    small = latest_monitor(p)
    assert small["status"] == "insufficient" and small["judged"] is False and small["records"] == 20
    assert "QualityShortfall" not in json.dumps(small.get("metrics") or {})
    stats = p.client("cloudwatch").get_metric_statistics(
        Namespace="ServerlessMLOps",
        MetricName="DriftedFeatures",
        Dimensions=[{"Name": "Model", "Value": "breast-cancer"}],
        StartTime=cloud.now().timestamp() - 7200,
        EndTime=cloud.now().timestamp() + 60,
        Period=60,
        Statistics=["Maximum"],
    )
    assert stats["Datapoints"] == []
    # Labels by request id and row, most of them wrong: live accuracy far below the champion's.
    answers = predict(p, FEATURES.iloc[420:560])
    truth = DATA["target"].iloc[420:560].tolist()
    labels = []
    for k, answer in enumerate(answers):
        for row in range(len(answer["predictions"])):
            labels.append({"request_id": answer["request_id"], "row": row, "label": 1 - int(truth[50 * k + row])})
    status, body = post(p, "/feedback", {"labels": labels[:70]})
    assert status == 202 and body["accepted"] == 70, body
    from typer.testing import CliRunner

    from mlops.tools.cli import app

    labels_file = tmp_path / "labels.json"  # the rest through the CLI, as a file
    labels_file.write_text(json.dumps({"labels": labels[70:]}))
    cli = CliRunner().invoke(app, ["feedback", str(labels_file), "--endpoint", p.endpoint or ""])
    assert cli.exit_code == 0 and json.loads(cli.output)["accepted"] == len(labels) - 70, cli.output
    status, body = post(p, "/feedback", {"labels": [{"request_id": "r", "label": 7}]})
    assert status == 400 and body["errors"][0]["field"] == "label", body
    cloud.tick(advance_s=HOUR)
    cloud.tick(advance_s=HOUR)
    summary = latest_monitor(p)
    assert summary["quality"]["labelled"] == len(labels)
    assert summary["quality"]["live"] < 0.3 < summary["quality"]["champion"]
    # Flipped labels are a concept shift (P(y|x) changed): the estimate from the model's calibrated probabilities
    # cannot see it — its stated limit — and the realized accuracy beside it does; the quality alarm is what fires.
    estimated = summary["estimate"]
    assert estimated["accuracy"] > 0.85 and estimated["realized"]["accuracy"] < 0.3
    assert estimated["realized"]["labelled"] == len(labels)
    # …and the report site draws the two over time: the estimate's windows, the realized accuracy where it came.
    index = p.stores.artifacts.get_bytes(f"sites/{p.model}/index.html").decode()
    chart = index[index.index('aria-label="estimated vs realized accuracy') :]
    chart = chart[: chart.index("</svg>")]
    assert chart.count('class="estimated"') >= 2 and chart.count('class="realized"') >= 1, chart[:400]
    assert describe_alarm(p, "QualityAlarmName")["StateValue"] == "ALARM"
    shown = CliRunner().invoke(app, ["monitor", "show", "--endpoint", p.endpoint or ""])
    assert shown.exit_code == 0 and "live accuracy" in shown.output and "ALARM" in shown.output, shown.output
    # The functions' own Powertools metrics (EMF log lines) are metric data too, as CloudWatch extracts them.
    shipped = p.client("cloudwatch").get_metric_statistics(
        Namespace="ServerlessMLOps",
        MetricName="CapturedRows",
        Dimensions=[{"Name": "service", "Value": "serverless-mlops"}],
        StartTime=cloud.now().timestamp() - 4 * 3600,  # stamped by the emulated clock: 3 ticks (hours) on by now
        EndTime=cloud.now().timestamp() + 60,
        Period=3600,
        Statistics=["Sum"],
    )["Datapoints"]
    assert sum(d["Sum"] for d in shipped) == 20 + 2 * len(labels)  # captured records and labels
    (run,) = alarm_runs(p)
    # train_on_feedback: the alarm's run trains on the prefix plus the served records that got labels.
    run = p.wait(run["run_id"], timeout=300)
    assert run["steps"]["extract"].get("outputs", {}).get("rows") == 400 + len(labels), run["steps"]["extract"]


def test_given_mlops_local_tick_advance_then_due_schedules_fire_and_a_breaching_alarm_reaches_the_trigger(tmp_path):
    """The CLI's path (another process would use the same): the clock advances through local.json, the
    monitor's hourly rule is due (the weekly retraining rule is not), and the CLI's own alarm evaluation sends
    the state change through EventBridge's PutEvents to the synthesized rule."""
    from datetime import UTC, datetime, timedelta

    from typer.testing import CliRunner

    from mlops.tools.cli import app

    with LocalCloud(quick_config_file(tmp_path), port=0) as cloud:
        cloud.alarms = None  # the emulator's own evaluation off: here only the CLI evaluates, and announces
        p = Platform.connect("dev", cloud.endpoint)
        t0 = datetime.now(UTC)
        dims = [{"Name": "Model", "Value": "breast-cancer"}]
        p.client("cloudwatch").put_metric_data(  # two judged windows, each with six drifted features
            Namespace="ServerlessMLOps",
            MetricData=[
                {"MetricName": "DriftedFeatures", "Dimensions": dims, "Timestamp": t0 + delta, "Value": 6.0}
                for delta in (timedelta(minutes=-10), timedelta(minutes=50))
            ],
        )
        out = CliRunner().invoke(app, ["local", "tick", "--advance", "1h", "--endpoint", cloud.endpoint])
        assert out.exit_code == 0, out.output
        assert "MonitoringModelbreastcancerSchedule" in out.output and "RulesSchedule" not in out.output  # weekly
        drift = p.alarm_name("DriftAlarm")
        assert f"alarm {drift}: OK → ALARM" in out.output, out.output
        assert abs(cloud.now() - (t0 + timedelta(hours=1))) < timedelta(minutes=1)  # the emulator's clock too
        deadline = time.monotonic() + LIVENESS_S  # the trigger, invoked asynchronously, may cold-start
        while not alarm_runs(p):
            assert time.monotonic() < deadline, "the alarm's state change did not reach the trigger"
            time.sleep(0.5)
        (run,) = alarm_runs(p)
        assert run["trigger"]["alarm"] == drift
        # On demand: no champion yet, so the window is not judged, and the CLI says why.
        judged = CliRunner().invoke(app, ["monitor", "run", "--endpoint", cloud.endpoint])
        assert judged.exit_code == 0 and "not judged: no_champion" in judged.output, judged.output
