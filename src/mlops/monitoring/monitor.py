"""D3: judge a window of captured traffic against the champion — drift, data quality, live quality.

For the window ``[end - window_hours, end)``: the captured records served by the champion are read from
``captures/<model>/date=…/``; features are checked with the very code that checks training batches
(:func:`mlops.data.schema.validate`: the champion's schema, anomalies and per-feature drift against its training
statistics, PSI / Jensen-Shannon with the configured thresholds); predictions are compared with the
training labels' distribution; labels posted to ``/feedback`` are joined by request id and row (or by
record id) and scored with the task's metrics. A window with fewer than ``monitoring.min_samples`` records
is not judged: only its size is published, so an alarm never fires on a handful of requests.

CloudWatch gets every value with ``Model`` as its one dimension: the alarms and the dashboard watch it, so a new
champion needs no new alarm, and the version a window judged is in its summary and report. (A ``Model``+``Version``
series of each value as well doubled the custom metrics billed — $0.30 a month each — for a series nothing read.)
S3 gets ``summary.json`` and ``report.html`` under ``monitoring/<model>/<window end>/``, and
``monitoring/<model>/latest.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from mlops.core import constants as c
from mlops.core.artifact_io import get_json, get_verified, put_json
from mlops.core.clock import utcnow
from mlops.core.config import HIGHER_IS_BETTER, ProjectConfig, Task
from mlops.core.context import Stores
from mlops.core.facts import MonitorWindowJudged, fact_id
from mlops.core.feature_sets import FeatureSets
from mlops.core.ports import MetricsPublisher, parse_s3_uri
from mlops.data.stats import feature_drift
from mlops.monitoring.capture import from_jsonl, iso

MAX_ANOMALIES_SHOWN = 50


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @classmethod
    def ending(cls, end: datetime, hours: float) -> Window:
        end = end.astimezone(UTC)
        return cls(end - timedelta(hours=hours), end)

    def dates(self) -> list[str]:
        day, last, out = self.start.date(), self.end.date(), []
        while day <= last:
            out.append(day.isoformat())
            day += timedelta(days=1)
        return out

    def holds(self, when: str) -> bool:
        return iso(self.start) <= _norm(when) < iso(self.end)


def _norm(when: str) -> str:
    """Captured times are ``…HH:MM:SS.ffffffZ``; compare any ISO time on that form."""
    try:
        return iso(parse_iso(when))
    except ValueError:
        return ""


def read_partitions(stores: Stores, prefix: str, model: str, dates: list[str]) -> list[dict[str, Any]]:
    """Every JSON Lines row under ``<prefix><model>/date=<d>/`` for the given dates."""
    bucket, _ = parse_s3_uri(stores.artifacts.uri(""))
    rows: list[dict[str, Any]] = []
    for day in dates:
        for obj in stores.reader.list_objects(bucket, f"{prefix}{model}/date={day}/"):
            rows.extend(from_jsonl(stores.reader.read(obj)))
    return rows


def join_labels(captures: list[dict[str, Any]], labels: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Any]]:
    """(captured record, label) pairs: a label names its prediction by request id and row, or by record id
    (the latest capture of that id). The latest label for a prediction wins."""
    by_request = {(r["request_id"], int(r.get("row", 0))): r for r in captures}
    by_id: dict[str, dict[str, Any]] = {}
    for r in sorted(captures, key=lambda r: str(r.get("time"))):
        if r.get("id") is not None:
            by_id[str(r["id"])] = r
    matched: dict[tuple[str, int], tuple[dict[str, Any], Any]] = {}
    for label in sorted(labels, key=lambda r: str(r.get("time"))):
        if label.get("request_id") is not None and label.get("id") is None:
            record = by_request.get((label["request_id"], int(label.get("row", 0))))
        else:
            record = by_id.get(str(label.get("id")))
        if record is not None:
            matched[(record["request_id"], int(record.get("row", 0)))] = (record, label["label"])
    return list(matched.values())


def live_quality(
    pairs: list[tuple[dict[str, Any], Any]], task: Task, metric: str, classes: list[Any] | None
) -> tuple[float | None, dict[str, Any]]:
    """The live metric on labelled predictions, and the task's other metrics."""
    from mlops.ml.metrics import metric_value, task_metrics

    if task is Task.REGRESSION:
        y_true = np.array([float(label) for _, label in pairs])
        y_pred = np.array([float(r["prediction"]) for r, _ in pairs])
        return metric_value(task, metric, y_true, y_pred, None, None), task_metrics(task, y_true, y_pred, None, None)
    names = [str(k) for k in classes or []]
    y_true = np.array([str(label) for _, label in pairs], dtype=object)
    y_pred = np.array([str(r["prediction"]) for r, _ in pairs], dtype=object)
    proba = np.array([[float((r.get("probabilities") or {}).get(k, 0.0)) for k in names] for r, _ in pairs])
    value = metric_value(task, metric, y_true, y_pred, proba, names)
    return value, task_metrics(task, y_true, y_pred, proba, names)


def estimated_quality(
    stores: Stores, record: dict[str, Any], served: list[dict[str, Any]], task: Task, quality: dict[str, Any]
) -> dict[str, Any] | None:
    """The window's accuracy and ROC AUC estimated before labels arrive (confidence-based performance estimation,
    :mod:`mlops.monitoring.estimate`), from the served probabilities mapped by the calibrator evaluation kept with
    the version (else as served: evaluation found them calibrated already), each with its 95% band; the realized
    values beside them where enough labels have arrived. None for a regressor. The estimate assumes calibrated
    probabilities and an unchanged P(y|x): a concept shift is invisible to it (the realized quality sees it)."""
    from mlops.monitoring.estimate import Calibrator, estimate

    rows = [r for r in served if r.get("probabilities")]
    if task is Task.REGRESSION or not rows:
        return None
    ref = (record.get("artifacts") or {}).get("calibrator")
    calibrator = Calibrator.from_json(get_verified(stores.artifacts, ref)) if ref else None
    classes = [str(k) for k in rows[0]["probabilities"]]
    if calibrator is not None and [str(k) for k in calibrator.classes] != classes:
        return {"error": f"the calibrator's classes {list(calibrator.classes)} are not the served ones {classes}"}
    raw = np.array([[float(r["probabilities"].get(k, 0.0)) for k in classes] for r in rows])
    try:
        est = estimate(
            calibrator.apply(raw) if calibrator else raw,
            classes,
            [str(r.get("prediction")) for r in rows],
            scores=raw,  # the realized AUC ranks rows by what was served
        )
    except ValueError as err:  # a served prediction outside the classes: say so, judge the rest of the window
        return {"error": str(err)}
    out: dict[str, Any] = {**est.to_dict(), "calibrated": calibrator is not None}
    if quality.get("judged"):
        realized = quality.get("metrics") or {}
        out["realized"] = {
            "accuracy": realized.get("accuracy"),
            "roc_auc": realized.get("roc_auc"),
            "labelled": quality.get("labelled"),
        }
    return out


def _agree(task: Task, a: Any, b: Any) -> bool:
    """Two answers agree: the same class; for regression, within 5 % of each other."""
    if task is not Task.REGRESSION:
        return str(a) == str(b)
    a, b = float(a), float(b)
    return abs(a - b) <= 0.05 * max(abs(a), abs(b), 1e-9)


def _median_ms(rows: list[dict[str, Any]], pick: Any) -> float | None:
    """The median handler time per request (a request's records share one time)."""
    per_request = {r.get("request_id"): pick(r) for r in rows if pick(r) is not None}
    values = [float(v) for v in per_request.values()]
    return round(float(np.median(values)), 3) if values else None


def compare(
    stores: Stores,
    config: ProjectConfig,
    task: Task,
    champion: int,
    captured: list[dict[str, Any]],
    labels: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """C4: champion against challenger on the same live traffic — records each answered, agreement (shadow: the
    same records), handler latency, errors, and live quality where labels exist. None without a challenger.

    A challenger is judged on its own stint only: the rows captured since its alias was set (``since``), in its
    current mode. The same version shadowed and then made a canary starts again from nothing: what it answered as
    a shadow (or in an earlier stint) says nothing about it now, and its alarms must not withdraw it on that."""
    item = stores.meta.get_alias_item(config.name, c.CHALLENGER)
    if item is None:
        return None
    version, mode = int(item["version"]), str(item.get("mode"))
    since = str(item.get("since") or item.get("updated_at") or "")
    stint = [r for r in captured if _norm(str(r.get("time"))) >= _norm(since)] if since else captured
    ours = [r for r in stint if int(r.get("version", -1)) == champion and r.get("role") != c.CHALLENGER]
    theirs = (
        [r for r in stint if int(r.get("version", -1)) == version and r.get("role") == c.CHALLENGER]
        if mode == c.CANARY
        else []
    )
    shadowed = [r for r in ours if (r.get("shadow") or {}).get("version") == version] if mode == c.SHADOW else []
    answered = [r for r in shadowed if "prediction" in r["shadow"]]
    out: dict[str, Any] = {
        "version": version,
        "mode": mode,
        "percent": float(item.get("percent") or 0),
        "since": since or None,
        "champion": champion,
        "records": {"champion": len(ours), "challenger": len(theirs) if mode == c.CANARY else len(answered)},
        "errors": sum(1 for r in shadowed if r["shadow"].get("error")),
        "latency_ms": {
            "champion": _median_ms(ours, lambda r: r.get("ms")),
            "challenger": _median_ms(theirs, lambda r: r.get("ms"))
            if mode == c.CANARY
            else _median_ms(shadowed, lambda r: r["shadow"].get("ms")),
        },
    }
    if answered:
        agreement = sum(_agree(task, r["prediction"], r["shadow"]["prediction"]) for r in answered) / len(answered)
        out.update(agreement=round(agreement, 6), disagreement=round(1 - agreement, 6))
    metric = config.quality_metric_for(task)
    quality: dict[str, Any] = {"metric": metric}
    challenger_rows = theirs if mode == c.CANARY else [{**r, **r["shadow"]} for r in answered]
    for side, rows in (("champion", ours), ("challenger", challenger_rows)):
        pairs = join_labels(rows, labels)
        if pairs:
            classes = list((pairs[0][0].get("probabilities") or {}).keys()) or None
            value, _ = live_quality(pairs, task, metric, classes)
            quality[side] = {"labelled": len(pairs), "value": None if value is None else round(value, 6)}
    out["quality"] = quality
    return out


def challenger_metrics(config: ProjectConfig, result: dict[str, Any]) -> dict[str, float]:
    """C4: what the challenger's alarms judge, published only for a window with enough evidence — disagreement and
    the latency ratio on at least ``min_samples`` challenger answers, the live-quality shortfall (the champion's
    live metric minus the challenger's, on the same window's labels) with ``min_labels`` on each side."""
    mon = config.monitoring
    answered = result["records"]["challenger"]
    out: dict[str, float] = {c.METRIC_CHALLENGER_RECORDS: answered}
    if answered < mon.min_samples:
        return out
    if result.get("disagreement") is not None:
        out[c.METRIC_CHALLENGER_DISAGREEMENT] = result["disagreement"]
    ms = result["latency_ms"]
    if ms.get("champion") and ms.get("challenger") is not None:
        out[c.METRIC_CHALLENGER_LATENCY_RATIO] = round(ms["challenger"] / ms["champion"], 4)
    gap = quality_gap(result, mon.min_labels)
    if gap is not None:
        out[c.METRIC_CHALLENGER_QUALITY_SHORTFALL] = gap
    return out


def quality_gap(result: dict[str, Any], min_labels: int) -> float | None:
    """The challenger's live-quality shortfall against the champion on the same window, or None without
    ``min_labels`` labelled answers on each side."""
    quality = result.get("quality") or {}
    ours, theirs = quality.get("champion") or {}, quality.get("challenger") or {}
    if min(ours.get("labelled", 0), theirs.get("labelled", 0)) < min_labels:
        return None
    if ours.get("value") is None or theirs.get("value") is None:
        return None
    return round(shortfall(str(quality["metric"]), float(ours["value"]), float(theirs["value"])), 6)


def auto_promote(stores: Stores, config: ProjectConfig, result: dict[str, Any]) -> dict[str, Any] | None:
    """C4's optional policy (``registry.challenger_auto_promote``): a challenger with ``min_labels`` labelled
    answers, no errors and a live-quality shortfall within ``max_regression`` becomes champion, recorded with
    ``actor: policy`` and the evidence as the reason. None: no policy."""
    from mlops.core.errors import RegistryError
    from mlops.core.registry import promote

    policy = config.registry.challenger_auto_promote
    if policy is None:
        return None
    gap = quality_gap(result, policy.min_labels)
    labelled = ((result.get("quality") or {}).get("challenger") or {}).get("labelled", 0)
    if gap is None:
        return {
            "promoted": False,
            "reason": f"{labelled} labelled challenger answer(s); the policy needs "
            f"{policy.min_labels} (and as many for the champion)",
        }
    if result["errors"] or gap > policy.max_regression:
        why = f"{result['errors']} error(s)" if result["errors"] else f"shortfall {gap:g} > {policy.max_regression:g}"
        return {"promoted": False, "reason": why}
    metric = result["quality"]["metric"]
    reason = (
        f"policy: {labelled} labelled answers, live {metric} {result['quality']['challenger']['value']:g} against "
        f"the champion's {result['quality']['champion']['value']:g} (shortfall {gap:g} <= {policy.max_regression:g})"
    )
    try:
        promote(stores, config.name, int(result["version"]), reason=reason, actor="policy")
    except RegistryError as err:
        return {"promoted": False, "reason": str(err)}
    return {"promoted": True, "reason": reason}


def shortfall(metric: str, champion: float, live: float) -> float:
    """How much worse live is than the champion's test metric: in the metric's units for scores, relative
    for errors (rmse, mae, mape), so one margin reads the same way for both."""
    if HIGHER_IS_BETTER[metric]:
        return champion - live
    return (live - champion) / max(abs(champion), 1e-12)


def run_monitor(
    stores: Stores,
    config: ProjectConfig,
    metrics: MetricsPublisher,
    end: datetime | None = None,
    feature_sets: FeatureSets | None = None,
) -> dict[str, Any]:
    """Judge the window ending at ``end`` (now); publish, store and return the summary. With the deployment's
    ``feature_sets``, each set's freshness, and the online/offline skew of those the model serves from, are judged
    too (:mod:`mlops.monitoring.feature_sets`) and published by set, whatever the window's size."""
    from mlops.core.registry import champion_statistics
    from mlops.data.schema import validate
    from mlops.reports.pages import monitor_html

    mon = config.monitoring
    window = Window.ending(end or utcnow(), mon.window_hours)
    model = config.name
    summary: dict[str, Any] = {
        "model": model,
        "window": {"start": iso(window.start), "end": iso(window.end), "hours": mon.window_hours},
        "min_samples": mon.min_samples,
        "evaluated_at": iso(utcnow()),
    }
    version = stores.meta.get_alias(model, c.CHAMPION)
    if version is None:
        return _store(stores, model, window, {**summary, "status": "no_champion", "judged": False}, monitor_html)
    record = stores.meta.get_model_version(model, version) or {}
    task = Task(record.get("task", config.task or "binary"))
    captured = [
        r
        for r in read_partitions(stores, c.CAPTURES_PREFIX, model, window.dates())
        if window.holds(str(r.get("time"))) and r.get("model") == model
    ]
    served = [r for r in captured if int(r.get("version", -1)) == version and r.get("role") != c.CHALLENGER]
    others = sorted({int(r["version"]) for r in captured if int(r.get("version", -1)) != version})
    summary.update(version=version, records=len(served), other_versions=others, task=task.value)
    dims = [{"Model": model}]
    values: dict[str, float] = {c.METRIC_RECORDS: len(served)}
    labels = [r for r in read_partitions(stores, c.FEEDBACK_PREFIX, model, window.dates()) if r.get("model") == model]
    if feature_sets:
        summary["feature_sets"] = _feature_sets(stores, config, feature_sets, captured, served, metrics, window.end)
    challenger = compare(stores, config, task, version, captured, labels)
    if challenger is not None:
        summary["challenger"] = challenger
        values.update(challenger_metrics(config, challenger))
        challenger["decision"] = auto_promote(stores, config, challenger)
    if len(served) < mon.min_samples:
        summary.update(
            status="insufficient",
            judged=False,
            reason=f"{len(served)} captured record(s) from v{version} in the window; at least "
            f"{mon.min_samples} (monitoring.min_samples) are needed to judge it",
        )
        metrics.publish(values, dims, window.end)
        return _store(stores, model, window, summary, monitor_html)

    # Features: the champion's schema, anomalies and drift, as validate_data checks a training batch.
    df = pd.DataFrame([r.get("features") or {} for r in served]).drop(columns=[config.id_column or ""], errors="ignore")
    schema_item = stores.meta.latest_schema(model)
    schema = get_json(stores.artifacts, schema_item["schema"]["uri"]) if schema_item else None
    baseline = champion_statistics(stores, model)
    checked = validate(df, schema, config, baseline, labelled=False)
    drift = checked["drift"]
    drifted = sorted(col for col, d in drift.items() if d["drifted"])
    score = max((d["value"] / d["threshold"] for d in drift.values()), default=0.0)
    quality_errors = [a for a in checked["anomalies"] if a["severity"] == "error" and a["code"] != "DRIFT"]
    values.update(
        {
            c.METRIC_DRIFTED_FEATURES: len(drifted),
            c.METRIC_DRIFT_SCORE: round(score, 6),
            c.METRIC_QUALITY_ERRORS: len(quality_errors),
        }
    )
    # Predictions against the training labels' distribution.
    prediction_drift: dict[str, Any] | None = None
    target_stats = (baseline or {}).get("target")
    if target_stats:
        measured = feature_drift(target_stats, pd.Series([r.get("prediction") for r in served]))
        if measured is not None:
            threshold = config.validation.drift.default_threshold
            prediction_drift = {
                "measure": measured.measure,
                "value": round(measured.value, 6),
                "threshold": threshold,
                "drifted": measured.value > threshold,
                "picture": measured.picture,
            }
            values[c.METRIC_PREDICTION_DRIFT] = round(measured.value, 6)
    # Live quality, where labels have arrived.
    pairs = join_labels(served, labels)
    metric = config.quality_metric_for(task)
    quality: dict[str, Any] = {"metric": metric, "labels_received": len(labels), "labelled": len(pairs)}
    values[c.METRIC_LABELLED] = len(pairs)
    if len(pairs) >= mon.min_labels:
        classes = list((pairs[0][0].get("probabilities") or {}).keys()) or None  # the model's own, in order
        live, all_metrics = live_quality(pairs, task, metric, classes)
        reference = (record.get("metrics") or {}).get(metric)
        quality.update(live=live, metrics=all_metrics, champion=reference, margin=mon.quality_margin, judged=True)
        if live is not None and reference is not None and math.isfinite(live):
            gap = shortfall(metric, float(reference), live)
            quality.update(shortfall=round(gap, 6), degraded=gap > mon.quality_margin)
            values[c.METRIC_LIVE_QUALITY] = round(live, 6)
            values[c.METRIC_QUALITY_SHORTFALL] = round(gap, 6)
    else:
        quality.update(
            judged=False,
            reason=f"{len(pairs)} labelled prediction(s); at least {mon.min_labels} (monitoring.min_labels) needed",
        )
    estimated = estimated_quality(stores, record, served, task, quality)
    if estimated is not None and "accuracy" in estimated:
        values[c.METRIC_ESTIMATED_ACCURACY] = round(estimated["accuracy"], 6)
        if estimated.get("roc_auc") is not None:
            values[c.METRIC_ESTIMATED_ROC_AUC] = round(estimated["roc_auc"], 6)
        tested = (record.get("metrics") or {}).get("accuracy")
        if tested is not None and math.isfinite(float(tested)):
            gap = float(tested) - estimated["accuracy"]
            estimated.update(
                champion=tested, shortfall=round(gap, 6), margin=mon.estimate_margin, degraded=gap > mon.estimate_margin
            )
            values[c.METRIC_ESTIMATED_SHORTFALL] = round(gap, 6)
    summary.update(
        status="judged",
        judged=True,
        estimate=estimated,
        drift={"features": drift, "drifted": drifted, "score": round(score, 6), "min_features": mon.drift_min_features},
        drifted=len(drifted) >= mon.drift_min_features,
        prediction_drift=prediction_drift,
        data_quality={"errors": len(quality_errors), "anomalies": checked["anomalies"][:MAX_ANOMALIES_SHOWN]},
        quality=quality,
        metrics=values,
    )
    metrics.publish(values, dims, window.end)
    return _store(stores, model, window, summary, monitor_html)


def _feature_sets(
    stores: Stores,
    config: ProjectConfig,
    sets: FeatureSets,
    captured: list[dict[str, Any]],
    served: list[dict[str, Any]],
    metrics: MetricsPublisher,
    end: datetime,
) -> list[dict[str, Any]]:
    """The feature sets' freshness and skew (:func:`mlops.monitoring.feature_sets.judge`), published with
    ``FeatureSet`` as their one dimension; the summary's entries."""
    from mlops.monitoring.feature_sets import judge

    entries, by_set = judge(stores, config, sets, captured, served, end)
    for name, values in by_set.items():
        metrics.publish(values, [{"FeatureSet": name}], end)
    return entries


def _store(stores: Stores, model: str, window: Window, summary: dict[str, Any], html: Any) -> dict[str, Any]:
    stamp = window.end.strftime("%Y%m%dT%H%M%SZ")
    base = f"{c.MONITORING_PREFIX}{model}/{stamp}/"
    report = stores.artifacts.put_bytes(f"{base}report.html", html(summary).encode(), "text/html; charset=utf-8")
    summary = {**summary, "report": report.as_dict()}
    ref = put_json(stores.artifacts, f"{base}summary.json", summary)
    put_json(stores.artifacts, latest_key(model), {**summary, "summary": ref.as_dict()})
    stores.events.publish(window_judged(model, window, summary))
    return summary


def window_judged(model: str, window: Window, summary: dict[str, Any]) -> MonitorWindowJudged:
    """The verdict as an event: drifted features and the live quality, small (the report holds the rest)."""
    quality = summary.get("quality") or {}
    return MonitorWindowJudged(
        id=fact_id(model, "window", iso(window.start), iso(window.end)),
        model=model,
        window_start=iso(window.start),
        window_end=iso(window.end),
        version=summary.get("version"),
        records=int(summary.get("records") or 0),
        judged=bool(summary.get("judged")),
        drifted_features=list((summary.get("drift") or {}).get("drifted") or [])[:50],
        quality={k: quality.get(k) for k in ("live", "champion", "shortfall") if k in quality} or None,
        at=str(summary.get("evaluated_at")),
        report=summary["report"]["uri"],
    )


def latest_key(model: str) -> str:
    return f"{c.MONITORING_PREFIX}{model}/latest.json"


def labelled_frame(stores: Stores, config: ProjectConfig, since: datetime, until: datetime) -> pd.DataFrame | None:
    """D5: served records that have received labels, as training rows (features plus the target column)."""
    window = Window(since.astimezone(UTC), until.astimezone(UTC))
    model = config.name
    captured = [
        r
        for r in read_partitions(stores, c.CAPTURES_PREFIX, model, window.dates())
        if window.holds(str(r.get("time"))) and r.get("model") == model
    ]
    labels = [r for r in read_partitions(stores, c.FEEDBACK_PREFIX, model, window.dates()) if r.get("model") == model]
    pairs = join_labels(captured, labels)
    if not pairs:
        return None
    return pd.DataFrame([{**(record.get("features") or {}), config.target: label} for record, label in pairs])


def parse_iso(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
