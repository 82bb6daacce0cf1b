"""Benchmarks: speed and memory as ratios taken in one run (see docs/benchmarks.md). Not tests."""

from __future__ import annotations

import os

OFFLINE_AWS = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "bench",
}


def offline_aws() -> None:
    """Credentials and a region for the in-process account (moto), unless the environment sets them."""
    for key, value in OFFLINE_AWS.items():
        os.environ.setdefault(key, value)
