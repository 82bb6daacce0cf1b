"""What the demo prints while it closes the loop, against a fake platform: an alarm's whole reason, wrapped at
word boundaries, and metrics rounded as every other figure is."""

from __future__ import annotations

from typing import Any

import pytest

from mlops.core.config import load_config
from mlops.tools.demo import _close_the_loop
from mlops.tools.samples import bundled, example_config_path

pytestmark = pytest.mark.unit

REASON = (
    "Threshold Crossed: 2 out of the last 2 datapoints [6.0, 6.0] were greater than or equal to the threshold "
    "(1.0) (minimum 2 datapoints for OK -> ALARM transition)."
)
WINDOW = {
    "model": "breast-cancer",
    "version": 2,
    "window": {"start": "2026-12-04T22:00:00Z", "end": "2026-12-05T22:00:00Z"},
    "judged": True,
    "records": 508,
    "drift": {"drifted": ["mean_radius"], "score": 3.2334441},
    "data_quality": {"errors": 0},
    "quality": {
        "judged": True,
        "metric": "accuracy",
        "live": 0.77,
        "labelled": 300,
        "champion": 0.956140350877193,
        "shortfall": 0.186140350877193,
        "margin": 0.05,
        "degraded": True,
    },
}


class FakePlatform:
    """Answers what the demo's last act asks: predictions, labels, the monitor's window, the drift alarm."""

    def predict(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return {"request_id": "r", "model_version": 2, "predictions": [{"prediction": 0} for _ in records]}

    def feedback(self, labels: list[dict[str, Any]]) -> dict[str, Any]:
        return {"accepted": len(labels)}

    def latest_monitor(self) -> dict[str, Any]:
        return WINDOW

    def alarm_name(self, kind: str) -> str:
        return "Mlops-dev-Monitoring-DriftAlarm"

    def alarms(self) -> list[dict[str, Any]]:
        return [{"AlarmName": "Mlops-dev-Monitoring-DriftAlarm", "StateValue": "ALARM", "StateReason": REASON}]

    def runs(self, limit: int) -> list[dict[str, Any]]:
        return []  # the demo then says no alarm-started run came, and stops


class FakeCloud:
    def tick(self, advance_s: float = 0) -> list[str]:
        return []


def test_given_a_drift_alarm_then_the_demo_prints_its_whole_reason_and_rounded_metrics(capsys):
    """It cut the reason at 90 characters ('…were GreaterThanOrEqualToThre') and printed the champion's metric as
    0.956140350877193."""
    data = bundled("breast-cancer")
    config = load_config(example_config_path())
    _close_the_loop(FakeCloud(), FakePlatform(), config, data, data.drop(columns=["target"]).head(1).to_dict("records"))
    out = capsys.readouterr().out
    assert " ".join(out.split()).count(f"drift alarm: ALARM — {REASON}") == 1, out
    assert max(len(line) for line in out.splitlines() if "alarm" in line or "transition" in line) <= 110
    assert "0.956140350877193" not in out and "champion 0.9561; shortfall 0.1861" in out
    assert "(score 3.2334)" in out
