"""A2: per-column statistics as JSON and a readable HTML report: in one pass, or past one function as a
Distributed Map over the snapshot's shards (:func:`analyze_shard`) and a merge (:func:`merge_statistics`)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from mlops.core.artifact_io import download_verified, get_json, put_json
from mlops.core.clock import utcnow_iso
from mlops.core.context import StepContext
from mlops.core.ports import ArtifactRefDict
from mlops.core.results import AnalyzeResult, ShardsResult
from mlops.core.runs import FAILED, pipeline_step
from mlops.data.engine import EngineLimits
from mlops.data.partials import IncompletePartials, Shard, StatisticsPlan, merge_partials, partial_statistics
from mlops.data.stats import compute_statistics
from mlops.reports.pages import statistics_html


@pipeline_step("analyze")
def analyze(ctx: StepContext, *, snapshot: ArtifactRefDict, limits: EngineLimits | None = None) -> AnalyzeResult:
    """Statistics of the snapshot, computed by DuckDB over its file on local disk within ``limits`` (else a share
    of the function's memory): the step's memory is bounded by the limit, not by the table."""
    limits = limits or EngineLimits.for_function()
    with tempfile.TemporaryDirectory(prefix="analyze-", dir=limits.temp_root) as tmp:
        path = download_verified(ctx.stores.artifacts, snapshot, Path(tmp) / "snapshot.parquet")
        stats = compute_statistics([path], ctx.config, limits)
    return _publish(ctx, stats)


def _publish(ctx: StepContext, stats: dict[str, Any], shards: int = 0) -> AnalyzeResult:
    ref = put_json(ctx.stores.artifacts, ctx.key("analyze", "statistics.json"), stats)
    html = statistics_html(ctx.model, ctx.run_id, stats)
    report = ctx.stores.artifacts.put_bytes(ctx.key("analyze", "statistics.html"), html.encode(), "text/html")
    return AnalyzeResult(
        statistics=ref.as_dict(),
        report=report.as_dict(),
        rows=stats["num_rows"],
        features=len(stats["features"]),
        shards=shards,
    )


def partial_key(ctx: StepContext, shard_key: str) -> str:
    """Where the partial of the shard at ``shard_key`` is written: one object per shard, named after it, so a
    retried shard overwrites its own and the merge finds each by listing."""
    return ctx.key("analyze", f"partials/{Path(shard_key).stem}.partial")


def analyze_shard(
    ctx: StepContext,
    *,
    key: str,
    etag: str | None,
    plan: ArtifactRefDict,
    limits: EngineLimits | None = None,
) -> dict[str, Any]:
    """One child of the statistics' Distributed Map: the partial statistics of the shard at ``key`` (in the
    artifact bucket, as the Map's listing gives it) under the run's ``plan``, written to S3 beside the others
    (a few KB a column: the state carries only where). A shard that fails is recorded on the run, naming it."""
    store = ctx.stores.artifacts
    limits = limits or EngineLimits.for_function()
    try:
        statistics_plan = StatisticsPlan.from_json(get_json(store, plan["uri"]))
        with tempfile.TemporaryDirectory(prefix="shard-", dir=limits.temp_root) as tmp:
            path = Path(tmp) / "shard.parquet"
            store.download(store.uri(key), str(path))
            data = partial_statistics([path], ctx.config, limits, plan=statistics_plan, shard=Shard(key, etag))
        ref = store.put_bytes(partial_key(ctx, key), data)
    except Exception as err:
        ctx.stores.meta.record_step(
            ctx.model,
            ctx.run_id,
            "analyze",
            {
                "status": FAILED,
                "started_at": utcnow_iso(),
                "error": {"type": type(err).__name__, "message": f"shard {key}: {err}"[:1000]},
            },
        )
        raise
    return {"shard": key, "partial": ref.uri, "bytes": ref.size}


@pipeline_step("analyze")
def merge_statistics(ctx: StepContext, *, shards: ShardsResult, manifest: ArtifactRefDict) -> AnalyzeResult:
    """The statistics of the whole snapshot from its shards' partials, as the one pass gives them (the
    differences, bounded, in :mod:`mlops.data.partials`). Complete or nothing: exactly one partial per shard extract
    listed, all under one plan, and as many rows as the snapshot has — else the run fails naming what is missing."""
    store = ctx.stores.artifacts
    listing = get_json(store, manifest["uri"])
    expected = [str(s["key"]) for s in listing.get("shards") or []]
    found = store.keys(ctx.key("analyze", "partials/"))
    stats = merge_partials([store.get_bytes(k) for k in found], ctx.config, expected_shards=expected)
    if stats["num_rows"] != int(listing["rows"]):
        raise IncompletePartials(
            f"the partials count {stats['num_rows']:,} rows, the snapshot has {int(listing['rows']):,}: "
            "a shard was read short; run again"
        )
    return _publish(ctx, stats, shards=shards.count)
