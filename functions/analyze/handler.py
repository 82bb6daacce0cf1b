"""Lambda: analyze (A2) — per-column statistics and a readable report: one pass over the snapshot; or, for a
sharded snapshot, one shard's partial statistics (a child of the Distributed Map) and then their merge."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.steps.analyze import analyze, analyze_shard, merge_statistics
from mlops.wiring.handlers import AnalyzeEvent, AnalyzeShardEvent, step_context, transient_errors, warm_up

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@warm_up()
@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    if "shard" in event:
        shard = parse(event=event, model=AnalyzeShardEvent)
        return analyze_shard(step_context(shard), key=shard.shard.key, etag=shard.shard.etag, plan=shard.plan)
    req = parse(event=event, model=AnalyzeEvent)
    if req.extract.shards is not None:
        return merge_statistics(step_context(req), shards=req.extract.shards, manifest=req.extract.manifest).as_state()
    return analyze(step_context(req), snapshot=req.extract.snapshot).as_state()
