"""Skew and freshness of the feature sets a model serves by entity: what the monitor adds per feature set.

* **Freshness**: the age, at the window's end, of the newest value in each set's offline store (the newest row
  ingestion materialized), from the statistics ingestion keeps (:func:`mlops.core.feature_sets.statistics_key`):
  the monitor never reads the offline rows themselves. Every set's, by every model's monitor (one GET each).
* **Online/offline skew**: the features served by entity in the window (what capture recorded of the records
  completed from the online store) against the statistics of the offline store's newest value per entity — the
  values the online store should be serving — measured as the monitor measures drift (:func:`feature_drift`:
  PSI for a number, Jensen-Shannon for a category), each over its drift threshold. A window with fewer than
  ``monitoring.min_samples`` looked-up records is not judged for skew.

CloudWatch gets two values per set, with ``FeatureSet`` as their one dimension (the alarms in
:class:`mlops.infra.constructs.feature_store.FeatureSetAlarms` watch them): the age in hours and the skew score
(the largest value ÷ threshold over the set's features; above 1, a feature is skewed). Each feature's measure is
in the window's summary, not in CloudWatch: a series per feature would bill $0.30 a month each.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import pandas as pd

from mlops.core import constants as c
from mlops.core.artifact_io import get_json
from mlops.core.config import ProjectConfig
from mlops.core.context import Stores
from mlops.core.feature_sets import FeatureSetConfig, FeatureSets, statistics_key
from mlops.data.stats import feature_drift


def looked_up_rows(captured: list[dict[str, Any]], served: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The ``served`` rows whose features of set ``name`` came from the online store: rows of a request that
    looked up every one of its records and found each a live value. Capture records the lookups' counts per request
    (``looked_up``), not per row: a request mixing records sent in full with records sent by key is left out, as
    is one where an entity was missing (its row holds training defaults, not served values)."""
    per_request = Counter(r.get("request_id") for r in captured)
    out = []
    for row in served:
        counts = (row.get("looked_up") or {}).get(name) or {}
        if set(counts) == {"found"} and counts["found"] == per_request[row.get("request_id")]:
            out.append(row)
    return out


def _parse(when: str | None) -> datetime | None:
    return datetime.fromisoformat(when.replace("Z", "+00:00")) if when else None


def read_statistics(stores: Stores, fs: FeatureSetConfig) -> dict[str, Any] | None:
    """What ingestion keeps of the set (statistics and freshness), or None before its first ingestion."""
    key = statistics_key(fs.name)
    if not stores.artifacts.exists(key):
        return None
    doc: dict[str, Any] = get_json(stores.artifacts, stores.artifacts.uri(key))
    return doc


def skew(
    config: ProjectConfig, features: list[str], stats: dict[str, Any], rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """Each feature's distance between its served values (``rows``) and the offline store's statistics, over the
    model's drift threshold for it; the score is the largest ratio."""
    measured: dict[str, Any] = {}
    for name in features:
        baseline = (stats.get("features") or {}).get(name)
        if baseline is None:
            continue
        drift = feature_drift(baseline, pd.Series([(r.get("features") or {}).get(name) for r in rows]))
        if drift is None:
            continue
        threshold = config.drift_threshold(name)
        measured[name] = {
            "measure": drift.measure,
            "value": round(drift.value, 6),
            "threshold": threshold,
            "skewed": drift.value > threshold,
            "picture": drift.picture,
        }
    score = max((d["value"] / d["threshold"] for d in measured.values()), default=0.0)
    return {
        "judged": True,
        "features": measured,
        "skewed": sorted(f for f, d in measured.items() if d["skewed"]),
        "score": round(score, 6),
    }


def judge(
    stores: Stores,
    config: ProjectConfig,
    sets: FeatureSets,
    captured: list[dict[str, Any]],
    served: list[dict[str, Any]],
    end: datetime,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """Every feature set's freshness at ``end``, and the skew of those the model takes features from (the
    summary's entries), with the values to publish by set. Each model's monitor publishes the age of every set: a
    set's staleness alarm hears from whichever monitor runs, whatever models use it."""
    uses = {u.name: u for u in config.feature_sets}
    entries: list[dict[str, Any]] = []
    values: dict[str, dict[str, float]] = {}
    for fs in sets:
        entry: dict[str, Any] = {"name": fs.name, "max_staleness_hours": fs.max_staleness_hours}
        entries.append(entry)
        doc = read_statistics(stores, fs)
        newest = _parse((doc or {}).get("newest_event_time"))
        if doc is None or newest is None:
            entry.update(status="never_ingested", reason="nothing ingested yet: no freshness, no skew")
            continue
        age = round((end - newest).total_seconds() / 3600, 3)
        entry.update(
            status="checked",
            version=doc.get("version"),
            newest_event_time=doc.get("newest_event_time"),
            newest_ingested_at=doc.get("newest_ingested_at"),
            age_hours=age,
            stale=fs.max_staleness_hours is not None and age > fs.max_staleness_hours,
        )
        values[fs.name] = {c.METRIC_FEATURE_AGE_HOURS: age}
        use = uses.get(fs.name)
        if use is None:
            continue  # the model serves nothing from this set: no skew of its own to judge
        rows = looked_up_rows(captured, served, fs.name)
        entry["looked_up"] = len(rows)
        if len(rows) < config.monitoring.min_samples:
            entry["skew"] = {
                "judged": False,
                "reason": f"{len(rows)} record(s) served by entity in the window; at least "
                f"{config.monitoring.min_samples} (monitoring.min_samples) are needed to judge skew",
            }
            continue
        entry["skew"] = skew(config, list(use.features or fs.features), doc.get("statistics") or {}, rows)
        values[fs.name][c.METRIC_FEATURE_SKEW] = entry["skew"]["score"]
    return entries, values
