"""A2: per-column statistics as JSON and a readable HTML report."""

from __future__ import annotations

from mlops.core.artifact_io import get_verified, put_json
from mlops.core.context import StepContext
from mlops.core.ports import ArtifactRefDict
from mlops.core.results import AnalyzeResult
from mlops.core.runs import pipeline_step
from mlops.data.frames import from_parquet_bytes
from mlops.data.stats import compute_statistics
from mlops.reports.pages import statistics_html


@pipeline_step("analyze")
def analyze(ctx: StepContext, *, snapshot: ArtifactRefDict) -> AnalyzeResult:
    df = from_parquet_bytes(get_verified(ctx.stores.artifacts, snapshot))
    stats = compute_statistics(df, ctx.config)
    ref = put_json(ctx.stores.artifacts, ctx.key("analyze", "statistics.json"), stats)
    html = statistics_html(ctx.model, ctx.run_id, stats)
    report = ctx.stores.artifacts.put_bytes(ctx.key("analyze", "statistics.html"), html.encode(), "text/html")
    return AnalyzeResult(
        statistics=ref.as_dict(), report=report.as_dict(), rows=stats["num_rows"], features=len(stats["features"])
    )
