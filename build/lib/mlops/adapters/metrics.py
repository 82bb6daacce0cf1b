"""The port to CloudWatch metrics: the monitor publishes its judgement of a window here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlops.core.constants import METRICS_NAMESPACE


class CloudWatchMetrics:
    def __init__(self, client: Any, namespace: str = METRICS_NAMESPACE) -> None:
        self._cw, self.namespace = client, namespace

    def publish(self, values: dict[str, float], dimensions: list[dict[str, str]], when: datetime) -> None:
        data = [
            {
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                "Timestamp": when,
                "Value": float(value),
                "Unit": "Count" if name.endswith(("Records", "Features", "Errors")) else "None",
            }
            for name, value in values.items()
            for dims in dimensions
        ]
        for i in range(0, len(data), 1000):  # PutMetricData takes at most 1000 values per call
            self._cw.put_metric_data(Namespace=self.namespace, MetricData=data[i : i + 1000])
