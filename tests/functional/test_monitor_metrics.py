"""What the monitor publishes to CloudWatch: each custom metric series bills $0.30 a month while it is published."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from mlops.core import constants as c
from mlops.core.clock import utcnow, utcnow_iso
from mlops.monitoring.monitor import run_monitor

pytestmark = pytest.mark.functional


class Recorder:
    def __init__(self) -> None:
        self.published: list[tuple[dict[str, float], list[dict[str, str]], datetime]] = []

    def publish(self, values: dict[str, float], dimensions: list[dict[str, str]], when: datetime) -> None:
        self.published.append((values, dimensions, when))


def test_given_a_champion_and_no_traffic_when_the_monitor_runs_then_one_series_per_value_by_model_alone(
    account: Any, breast_cancer_config: Any
) -> None:
    # GIVEN a champion (v3) and an hour without traffic
    history = {"at": utcnow_iso(), "action": "promote", "reason": "test", "actor": "test"}
    account.stores.meta.set_alias(breast_cancer_config.name, c.CHAMPION, 3, history)
    metrics = Recorder()
    # WHEN the monitor judges the window
    summary = run_monitor(account.stores, breast_cancer_config, metrics, utcnow())
    # THEN it publishes the window's size once, by Model only: no Model+Version series, which would bill a second
    # custom metric for every value (and a third, fourth… for each new champion while the old series is still billed)
    assert summary["status"] == "insufficient" and summary["version"] == 3
    assert [(values, dims) for values, dims, _ in metrics.published] == [
        ({c.METRIC_RECORDS: 0}, [{"Model": breast_cancer_config.name}])
    ]
