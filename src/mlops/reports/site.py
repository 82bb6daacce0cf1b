"""One static site per model: an overview, a page per run, per version and per monitored window.

Built from what the platform already records — the runs table, the registry, the promotion history and the
steps' JSON artifacts (statistics, anomalies with their drift pictures, the blessing's gates, the trials, the
evaluation with its curves) — so it can be rebuilt at any time and nothing is computed twice. Pure Python and
Jinja2 (no numpy): it runs in the base bundle. ``finalize`` publishes it under ``sites/<model>/`` in the
artifacts bucket when a run ends and the monitor when a window is judged; ``mlops site`` and ``mlops demo``
write it to a folder.

Pages link to each other relatively (``index.html``, ``runs/<run>.html``, ``versions/v<N>.html``,
``monitor/<window>.html``), so the folder can be opened from disk, served from S3 or printed. A model that takes
features from feature sets has a page per set (``feature-sets/<set>.html``): the statistics and freshness ingestion
keeps of it, its registry versions, the last skew the monitor measured, and every model using it with its versions
trained on it (another model's pages are ``../../<model>/…``: sites sit side by side, on S3 as in a folder).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops.core import constants as c
from mlops.core.clock import utcnow
from mlops.core.config import HIGHER_IS_BETTER, ModelSet
from mlops.core.context import Stores
from mlops.core.feature_sets import FeatureSetConfig, registry_key, statistics_key, trained_on
from mlops.reports.pages import evaluation_html, monitor_html, render

log = logging.getLogger(__name__)

MAX_RUNS = 50
MAX_FEATURE_PICTURES = 12
STABLE_FEATURE_PICTURES = 6  # where no feature drifted, the six closest to drifting
MAX_MONITOR_WINDOWS = 48


def site_prefix(model: str) -> str:
    return f"{c.SITES_PREFIX}{model}/"


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def run_page(run_id: str) -> str:
    return f"runs/{run_id}.html"


def version_page(version: int | str) -> str:
    return f"versions/v{version}.html"


def feature_set_page(name: str) -> str:
    return f"feature-sets/{name}.html"


def window_stamp(summary: dict[str, Any]) -> str:
    return str(summary["window"]["end"]).replace(":", "").replace("-", "")[:15]


def monitor_page(summary: dict[str, Any]) -> str:
    return f"monitor/{window_stamp(summary)}.html"


@dataclass
class SiteData:
    """Everything the pages show, read once from the stores."""

    model: str
    runs: list[dict[str, Any]]  # oldest first
    versions: list[dict[str, Any]]
    history: list[dict[str, Any]]
    champion: int | None
    monitors: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    jobs: list[dict[str, Any]] = field(default_factory=list)  # batch scoring jobs, newest first


class _Reader:
    """JSON artifacts by URI, each read at most once; a missing or unreadable one is None (an old run's
    artifact expired by the bucket's lifecycle rules must not break the site)."""

    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self._cache: dict[str, Any] = {}

    def json(self, uri: Any) -> Any:
        if isinstance(uri, dict):
            uri = uri.get("uri")
        if not isinstance(uri, str) or not uri:
            return None
        if uri not in self._cache:
            try:
                self._cache[uri] = json.loads(self.stores.artifacts.get_bytes(uri))
            except Exception as err:  # noqa: BLE001 — expired, or not ours: the page says it is missing
                log.warning("site: cannot read %s: %s", uri, err)
                self._cache[uri] = None
        return self._cache[uri]


def load(stores: Stores, model: str, monitors: list[dict[str, Any]] | None = None) -> SiteData:
    runs = list(reversed(stores.meta.list_runs(model, MAX_RUNS)))
    versions = sorted(stores.meta.list_model_versions(model), key=lambda v: int(v["version"]))
    history = stores.meta.alias_history(model)
    if monitors is None:
        monitors = monitor_summaries(stores, model)
    jobs = stores.meta.list_jobs(model, MAX_RUNS)
    return SiteData(model, runs, versions, history, stores.meta.get_alias(model, c.CHAMPION), monitors, jobs)


def monitor_summaries(stores: Stores, model: str) -> list[dict[str, Any]]:
    """The monitor's judged windows (``monitoring/<model>/<stamp>/summary.json``), oldest first."""
    keys = [k for k in stores.artifacts.keys(f"{c.MONITORING_PREFIX}{model}/") if k.endswith("/summary.json")]
    reader = _Reader(stores)
    out = [reader.json(stores.artifacts.uri(k)) for k in sorted(keys)[-MAX_MONITOR_WINDOWS:]]
    return [s for s in out if isinstance(s, dict) and s.get("window")]


# -- the pieces each page draws ------------------------------------------------------------------------
def _metric_of(run: dict[str, Any]) -> tuple[str | None, float | None]:
    metrics = run.get("metrics") or {}
    outputs = ((run.get("steps") or {}).get("evaluate") or {}).get("outputs") or {}
    metric = outputs.get("metric")
    value = metrics.get(metric) if metric else None
    return metric, value if isinstance(value, int | float) else None


def metric_points(data: SiteData) -> dict[str, Any] | None:
    """The primary metric of every evaluated run in order: registered versions (the champion marked) and the
    candidates that were rejected, so a reader sees what each gate kept out."""
    version_of_run = {v.get("run_id"): int(v["version"]) for v in data.versions}
    points: list[dict[str, Any]] = []
    metric = None
    for run in data.runs:
        m, value = _metric_of(run)
        if value is None:
            continue
        metric = metric or m
        version = version_of_run.get(run["run_id"])
        kind = "champion" if version is not None and version == data.champion else "version" if version else "rejected"
        points.append(
            {
                "label": f"v{version}" if version else "rejected",
                "value": value,
                "kind": kind,
                "href": run_page(run["run_id"]),
                "run_id": run["run_id"],
            }
        )
    if not points or metric is None:
        return None
    lo, hi = min(p["value"] for p in points), max(p["value"] for p in points)
    pad = (hi - lo) * 0.1 or abs(hi) * 0.05 or 0.05
    return {
        "metric": metric,
        "higher_is_better": HIGHER_IS_BETTER.get(metric, True),
        "points": points,
        "y0": lo - pad,
        "y1": hi + pad,
    }


def estimate_points(data: SiteData) -> dict[str, Any] | None:
    """Per monitored window, oldest first: the accuracy estimated before labels with its band, and the realized
    accuracy once labels arrived for the same window — the estimate checked against the truth over time (a gap
    that opens while the drift stays quiet is the concept shift the estimate cannot see)."""
    points: list[dict[str, Any]] = []
    for m in data.monitors:
        estimate = m.get("estimate") or {}
        if not isinstance(estimate.get("accuracy"), int | float):
            continue
        band = estimate.get("accuracy_band") or [estimate["accuracy"], estimate["accuracy"]]
        realized = (estimate.get("realized") or {}).get("accuracy")
        points.append(
            {
                "label": str(m["window"].get("end", ""))[5:16].replace("T", " "),
                "estimated": float(estimate["accuracy"]),
                "low": float(band[0]),
                "high": float(band[1]),
                "realized": float(realized) if isinstance(realized, int | float) else None,
                "labelled": (estimate.get("realized") or {}).get("labelled"),
                "rows": estimate.get("rows"),
                "href": monitor_page(m),
            }
        )
    if not points:
        return None
    champion = next(
        (
            float(m["estimate"]["champion"])
            for m in reversed(data.monitors)
            if isinstance((m.get("estimate") or {}).get("champion"), int | float)
        ),
        None,
    )
    values = [v for p in points for v in (p["low"], p["high"], p["realized"]) if v is not None]
    values += [champion] if champion is not None else []
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.1 or 0.02
    return {
        "points": points,
        "champion": champion,
        "level": next((m["estimate"].get("level") for m in data.monitors if m.get("estimate")), 0.95),
        "y0": max(0.0, lo - pad),
        "y1": min(1.0, hi + pad),
    }


def step_timeline(run: dict[str, Any]) -> dict[str, Any] | None:
    """One bar per step, at its start relative to the run's start, labelled by the step's name."""
    steps = run.get("steps") or {}
    t0 = _parse_time(run.get("started_at"))
    rows: list[dict[str, Any]] = []
    for name, s in sorted(steps.items(), key=lambda kv: (kv[1].get("started_at") or "", kv[0])):
        start = _parse_time(s.get("started_at"))
        if start is None:
            continue
        t0 = t0 or start
        rows.append(
            {
                "label": name,
                "start": max(0.0, (start - t0).total_seconds()),
                "duration": float(s.get("duration_s") or 0.0),
                "status": s.get("status", ""),
            }
        )
    for trial_id, t in sorted((run.get("trials") or {}).items()):
        start = _parse_time(t.get("started_at"))
        if start is None or t0 is None:
            continue
        rows.append(
            {
                "label": f"trial {trial_id}",
                "start": max(0.0, (start - t0).total_seconds()),
                "duration": float(t.get("duration_s") or 0.0),
                "status": t.get("status", ""),
            }
        )
    if not rows:
        return None
    rows.sort(key=lambda r: (r["start"], r["label"]))
    end = max(r["start"] + r["duration"] for r in rows)
    return {"rows": rows, "end": end or 1.0}


def training_rows(run: dict[str, Any]) -> dict[str, Any] | None:
    """Where the run's candidate was refit and on how many rows, how many the trials fit (a sample of the training
    split on the Fargate path) and how many test rows evaluate scored (a sample there too): from plan_trials' and
    prepare's outputs."""
    steps = run.get("steps") or {}
    plan = (steps.get("plan_trials") or {}).get("outputs") or {}
    rows = ((steps.get("prepare") or {}).get("outputs") or {}).get("rows") or {}
    if not plan or not rows:
        return None
    train, validation = int(rows.get("train") or 0), int(rows.get("validation") or 0)
    tuned = int(plan.get("tune_rows") or train)
    return {
        "compute": "ECS Fargate" if plan.get("compute") == "fargate" else "Lambda",
        "tuned": tuned,
        "sampled": tuned < train,
        "train": train,
        "refit": train + validation,
        "test": int(rows.get("test") or 0),
        "scored": int(rows.get("test_sample") or rows.get("test") or 0),
        "test_sampled": "test_sample" in rows,
    }


def trials_table(run: dict[str, Any]) -> dict[str, Any] | None:
    trials = list((run.get("trials") or {}).values())
    if not trials:
        return None
    train = ((run.get("steps") or {}).get("train") or {}).get("outputs") or {}
    metric = train.get("metric") or next((t.get("metric") for t in trials if t.get("metric")), "")
    best = train.get("best_trial")
    higher = HIGHER_IS_BETTER.get(metric, True)
    scored = [t for t in trials if isinstance(t.get("value"), int | float)]
    scored.sort(key=lambda t: t["value"], reverse=higher)
    rows = scored + [t for t in trials if t not in scored]
    values = [t["value"] for t in scored]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (hi - lo) * 0.1 or abs(hi) * 0.05 or 0.05
    return {
        "metric": metric,
        "best": best,
        "higher_is_better": higher,
        "rows": [
            {
                "trial_id": t.get("trial_id", ""),
                "family": t.get("family", ""),
                "params": ", ".join(f"{k}={v}" for k, v in sorted((t.get("params") or {}).items())),
                "value": t.get("value"),
                "status": t.get("status", ""),
                "duration": t.get("duration_s"),
                "error": t.get("error"),
                "best": t.get("trial_id") == best,
            }
            for t in rows
        ],
        "x0": lo - pad,
        "x1": hi + pad,
    }


def feature_pictures(anomalies: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Training (the champion's data) against the new batch for each checked feature, on the bins the drift
    measure compared — the most drifted first."""
    drift = (anomalies or {}).get("drift") or {}
    out = []
    for col, d in sorted(drift.items(), key=lambda kv: -float(kv[1].get("value") or 0)):
        picture = d.get("picture")
        if not picture or not picture.get("bins"):
            continue
        out.append({"feature": col, **d, "picture": picture})
    drifted = sum(1 for d in out if d.get("drifted"))
    return out[: min(MAX_FEATURE_PICTURES, max(drifted, STABLE_FEATURE_PICTURES))]


def gate_rows(blessing: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows = []
    for check in (blessing or {}).get("checks") or []:
        rows.append(
            {
                "name": check.get("name", ""),
                "passed": bool(check.get("passed")),
                "candidate": check.get("candidate"),
                "against": check.get("against"),
                "against_label": check.get("against_label", ""),
                "threshold": check.get("threshold"),
                "threshold_label": check.get("threshold_label", ""),
                "detail": check.get("detail", ""),
            }
        )
    return rows


def _run_links(data: SiteData) -> dict[str, int]:
    return {str(v["run_id"]): int(v["version"]) for v in data.versions if v.get("run_id")}


def feature_set_view(
    stores: Stores, models: ModelSet, fs: FeatureSetConfig, monitors: list[dict[str, Any]]
) -> dict[str, Any]:
    """What a feature set's page shows: its definition; the statistics and freshness ingestion keeps (none before
    the first ingestion), with the newest value's age now; its registry versions; the models using it with their
    versions trained on it; and the skew in the last of ``monitors`` (the model's windows) that judged it."""
    reader = _Reader(stores)
    key = statistics_key(fs.name)
    kept = reader.json(stores.artifacts.uri(key)) if stores.artifacts.exists(key) else None
    newest = _parse_time((kept or {}).get("newest_event_time"))
    age = round((utcnow() - newest).total_seconds() / 3600, 1) if newest else None
    skews = [
        {"window": m["window"], **entry}
        for m in monitors
        for entry in m.get("feature_sets") or []
        if entry.get("name") == fs.name and (entry.get("skew") or {}).get("judged")
    ]
    return {
        "fs": fs,
        "kept": kept,
        "age_hours": age,
        "stale": age is not None and fs.max_staleness_hours is not None and age > fs.max_staleness_hours,
        "versions": stores.meta.schema_versions(registry_key(fs.name)),
        "users": trained_on(stores, models, fs.name),
        "skew": skews[-1] if skews else None,
    }


# -- pages ---------------------------------------------------------------------------------------------
def build(
    stores: Stores, model: str, monitors: list[dict[str, Any]] | None = None, models: ModelSet | None = None
) -> dict[str, str]:
    """Every page of ``model``'s site: relative path → HTML. With the deployment's ``models``, a page per feature
    set the model takes features from."""
    data = load(stores, model, monitors)
    reader = _Reader(stores)
    versions_of = _run_links(data)
    pages: dict[str, str] = {}
    nav = {"model": model}
    for run in data.runs:
        steps = run.get("steps") or {}
        outputs = {name: (s.get("outputs") or {}) for name, s in steps.items()}
        anomalies_uri = outputs.get("validate_data", {}).get("anomalies") or (steps.get("validate_data") or {}).get(
            "anomalies_uri"
        )
        anomalies = reader.json(anomalies_uri)
        blessing = reader.json(outputs.get("validate_model", {}).get("report"))
        evaluation = reader.json(outputs.get("evaluate", {}).get("evaluation"))
        has_evaluation = evaluation is not None
        if has_evaluation and run["run_id"] not in versions_of:
            pages[f"runs/{run['run_id']}-evaluation.html"] = evaluation_html(
                model,
                run["run_id"],
                evaluation,
                title=f"Candidate of run {run['run_id']} — {model}",
                root="../",
                nav=nav,
            )
        pages[run_page(run["run_id"])] = render(
            "site_run.html.j2",
            title=f"Run {run['run_id']} — {model}",
            root="../",
            nav=nav,
            run=run,
            version=versions_of.get(run["run_id"]),
            timeline=step_timeline(run),
            trials=trials_table(run),
            training=training_rows(run),
            anomalies=(anomalies or {}).get("anomalies") or run.get("anomalies") or [],
            drift_checked=bool((anomalies or {}).get("baseline")),
            pictures=feature_pictures(anomalies),
            gates=gate_rows(blessing),
            blessed=(blessing or {}).get("blessed"),
            has_evaluation=has_evaluation,
        )
    for v in data.versions:
        listed = any(r["run_id"] == v.get("run_id") for r in data.runs)
        evaluation = reader.json((v.get("artifacts") or {}).get("evaluation"))
        pages[version_page(v["version"])] = evaluation_html(
            model,
            str(v.get("run_id", "")),
            evaluation,
            title=f"Version {v['version']} — {model}",
            root="../",
            nav=nav,
            version=v,
            champion=data.champion,
            run_listed=listed,
        )
    for m in data.monitors:
        pages[monitor_page(m)] = monitor_html(m, root="../", nav=nav)
    set_pages = _feature_set_pages(stores, models, model, data.monitors) if models is not None else {}
    pages.update(set_pages)
    pages["index.html"] = render(
        "site_index.html.j2",
        title=f"{model}",
        root="",
        nav=nav,
        data=data,
        versions_of=versions_of,
        chart=metric_points(data),
        estimates=estimate_points(data),
        metric_of=_metric_of,
        monitor_page=monitor_page,
        run_pages={r["run_id"] for r in data.runs},
        feature_sets=[(rel.removeprefix("feature-sets/").removesuffix(".html"), rel) for rel in set_pages],
    )
    return pages


def _feature_set_pages(stores: Stores, models: ModelSet, model: str, monitors: list[dict[str, Any]]) -> dict[str, str]:
    """A page per feature set ``model`` takes features from (none when the deployment does not list it)."""
    if model not in models.names:
        return {}
    pages = {}
    for use in models.get(model).feature_sets:
        view = feature_set_view(stores, models, models.feature_sets.get(use.name), monitors)
        pages[feature_set_page(use.name)] = render(
            "site_feature_set.html.j2",
            title=f"Feature set {use.name} — {model}",
            root="../",
            nav={"model": model},
            model=model,
            **view,
        )
    return pages


def write_sites(
    stores: Stores, models: list[str], out: Path, title: str = "serverless-mlops", catalog: ModelSet | None = None
) -> Path:
    """Each model's site under ``out/<model>/`` and a home page listing them (and the feature sets they take
    features from, each linked to its page in the first of their sites); returns ``out/index.html``."""
    rows = []
    sets: dict[str, str] = {}
    for model in models:
        write(build(stores, model, models=catalog), out / model)
        if catalog is not None and model in catalog.names:
            for use in catalog.get(model).feature_sets:
                sets.setdefault(use.name, f"{model}/{feature_set_page(use.name)}")
        data = load(stores, model, monitors=[])
        champion = next((v for v in data.versions if int(v["version"]) == data.champion), None)
        rows.append(
            {"name": model, "champion": champion, "runs": len(data.runs), "last": data.runs[-1] if data.runs else None}
        )
    home = out / "index.html"
    home.write_text(render("site_home.html.j2", title=title, models=rows, feature_sets=sets), encoding="utf-8")
    return home


def write(pages: dict[str, str], out: Path) -> Path:
    """The pages under ``out`` (created); returns ``out/index.html``. Pages of an earlier build that this one
    no longer has are removed, so every link on the site is one of its own pages."""
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("runs", "versions", "monitor", "feature-sets"):
        for old in (out / sub).glob("*.html") if (out / sub).is_dir() else ():
            if f"{sub}/{old.name}" not in pages:
                old.unlink()
    for rel, html in pages.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    return out / "index.html"


def publish(stores: Stores, model: str, models: ModelSet | None = None) -> list[str]:
    """Build ``model``'s site (its feature sets' pages with the deployment's ``models``) and put it under
    ``sites/<model>/`` in the artifacts bucket; the keys written."""
    pages = build(stores, model, models=models)
    prefix = site_prefix(model)
    keys = []
    for rel, html in pages.items():
        key = prefix + rel
        stores.artifacts.put_bytes(key, html.encode(), "text/html; charset=utf-8")
        keys.append(key)
    return keys


def publish_quietly(stores: Stores, model: str, models: ModelSet | None = None) -> list[str]:
    """:func:`publish` where the site is a by-product (a run's end, a monitored window): a failure is logged
    and never fails the run or the window it reports on."""
    try:
        return publish(stores, model, models)
    except Exception:  # a report must not fail what it reports on; log.exception says why
        log.exception("site: could not publish the site of %s", model)
        return []
