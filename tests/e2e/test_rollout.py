"""C4 end to end, over HTTP on the emulator: a 10 % canary routed by the record's id, a shadow captured beside the
champion and never returned, and a challenger withdrawn by its own alarm — traffic → capture → the scheduled
monitor → the synthesized disagreement alarm → EventBridge → the trigger — with the reason in the history."""

from __future__ import annotations

import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from mlops.core.constants import CAPTURES_PREFIX, CHALLENGER
from mlops.local.emulator import LocalCloud
from mlops.monitoring.monitor import Window, read_partitions
from mlops.tools.platform import LIVENESS_S, Platform
from mlops.tools.samples import bundled
from tests.conftest import quick_config_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HOUR = 3600
DATA = bundled("breast-cancer")
DATA.insert(0, "patient_id", [f"p-{i:04d}" for i in range(len(DATA))])
FEATURES = DATA.drop(columns=["target"])


def post(p: Platform, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Plain HTTP to the local API Gateway, as curl would."""
    req = urllib.request.Request(
        p.output("ApiUrl") + "/models/breast-cancer/predict",
        data=json.dumps({"records": records}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=LIVENESS_S) as resp:  # a cold start may take a while
        assert resp.status == 200
        return dict(json.loads(resp.read()))


def record(i: int, prefix: str) -> dict[str, Any]:
    return {**FEATURES.iloc[i % len(FEATURES)].to_dict(), "patient_id": f"{prefix}-{i:04d}"}


def wait_for_cache() -> None:
    time.sleep(1.2)  # MLOPS_MODEL_CACHE_SECONDS=1: the serve function re-reads the aliases after this


def shadow_rows(p: Platform, expected: int) -> list[dict[str, Any]]:
    """Captured rows that carry a shadow answer, once the capture path (log subscription → capture function →
    S3) has shipped ``expected`` of them."""
    deadline = time.monotonic() + LIVENESS_S  # the capture function is invoked asynchronously, may cold-start
    while True:
        window = Window.ending(p.now(), 24)
        rows = [r for r in read_partitions(p.stores, CAPTURES_PREFIX, p.model, window.dates()) if r.get("shadow")]
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def test_given_a_canary_then_a_shadow_then_routing_by_id_capture_of_both_and_withdrawal_by_the_challengers_alarm(
    monkeypatch: pytest.MonkeyPatch, tmp_path
):
    monkeypatch.setenv("MLOPS_MODEL_CACHE_SECONDS", "1")
    config = quick_config_file(tmp_path, id_column="patient_id", evaluation={"gates": {"max_regression": 1.0}})
    with LocalCloud(config, port=0) as cloud:
        p = Platform.connect("dev", cloud.endpoint).for_model("breast-cancer")
        # v1 was trained on a batch whose labels were inverted upstream, v2 on the corrected batch (champion).
        for name, frame in (("v1.csv", DATA.assign(target=1 - DATA["target"])), ("v2.csv", DATA)):
            up = p.upload(frame.to_csv(index=False).encode(), f"breast-cancer/{name}")
            run = p.wait(p.run_for_upload(up["key"], up["etag"]), timeout=300)
            assert run["status"] == "SUCCEEDED", run.get("error") or run.get("status")
        assert p.champion() == 2

        # Canary: 1,000 requests of one record each, distinct ids; v1 answers about a tenth of them.
        p.challenge(1, mode="canary", percent=10, reason="try v1 on a tenth", actor="e2e")
        wait_for_cache()
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda i: post(p, [record(i, "c")]), range(1000)))
        by_id = {a["predictions"][0]["id"]: a["predictions"][0]["model_version"] for a in answers}
        assert len(by_id) == 1000 and set(by_id.values()) == {1, 2}
        share = sum(v == 1 for v in by_id.values()) / 1000
        assert 0.07 <= share <= 0.13, share
        assert all(a["model_version"] == a["predictions"][0]["model_version"] for a in answers)
        # The same id always gets the same version: alone again, and among 299 others in one request.
        again = [post(p, [record(i, "c")])["predictions"][0]["model_version"] for i in range(0, 1000, 50)]
        assert again == [by_id[f"c-{i:04d}"] for i in range(0, 1000, 50)]
        batch = post(p, [record(i, "c") for i in range(300)])["predictions"]
        assert [a["model_version"] for a in batch] == [by_id[f"c-{i:04d}"] for i in range(300)]

        # Shadow: the champion answers every request; the capture holds both answers, row by row.
        p.challenge(1, mode="shadow", percent=0, reason="shadow v1", actor="e2e")
        wait_for_cache()
        for j in range(0, 300, 50):
            body = post(p, [record(i, "s") for i in range(j, j + 50)])
            assert body["model_version"] == 2 and all("model_version" not in a for a in body["predictions"])
        rows = shadow_rows(p, 300)
        assert len(rows) == 300 and {r["version"] for r in rows} == {2}
        assert {r["shadow"]["version"] for r in rows} == {1}
        disagree = sum(r["shadow"]["prediction"] != r["prediction"] for r in rows) / len(rows)
        assert disagree > 0.9  # v1 learnt inverted labels: it disagrees with v2 almost everywhere
        compared = p.compare()
        assert compared is not None and compared["mode"] == "shadow" and compared["disagreement"] > 0.9, compared

        # The hourly monitor judges the window and publishes the disagreement; CloudWatch (the emulator's evaluator
        # of the synthesized alarm) fires; the alarm's rule hands the state change to the trigger: v1 withdrawn.
        cloud.tick(advance_s=HOUR)
        (alarm,) = [a for a in p.alarms() if "ChallengerDisagreement" in a["AlarmName"]]
        assert alarm["StateValue"] == "ALARM", alarm
        assert p.challenger() is None
        last = p.history()[-1]
        assert (last["alias"], last["action"], last["actor"]) == (CHALLENGER, "withdraw", "alarm"), last
        assert alarm["AlarmName"] in last["reason"] and "Threshold Crossed" in last["reason"], last
        # The champion is untouched and answers alone; this alarm started no retraining run.
        assert p.champion() == 2
        wait_for_cache()
        body = post(p, [record(i, "t") for i in range(100)])
        assert body["model_version"] == 2 and all(a.get("model_version", 2) == 2 for a in body["predictions"])
        assert [(r.get("trigger") or {}).get("reason") for r in p.runs()] == ["s3_upload", "s3_upload"]
