"""A2: per-column statistics as JSON and a readable HTML report."""

from __future__ import annotations

import tempfile
from pathlib import Path

from mlops.core.artifact_io import download_verified, put_json
from mlops.core.context import StepContext
from mlops.core.ports import ArtifactRefDict
from mlops.core.results import AnalyzeResult
from mlops.core.runs import pipeline_step
from mlops.data.engine import EngineLimits
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
    ref = put_json(ctx.stores.artifacts, ctx.key("analyze", "statistics.json"), stats)
    html = statistics_html(ctx.model, ctx.run_id, stats)
    report = ctx.stores.artifacts.put_bytes(ctx.key("analyze", "statistics.html"), html.encode(), "text/html")
    return AnalyzeResult(
        statistics=ref.as_dict(), report=report.as_dict(), rows=stats["num_rows"], features=len(stats["features"])
    )
