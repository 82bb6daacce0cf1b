"""Lambda: ingest_features — a feature set upload into the offline and online stores, once."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.core.constants import METRIC_FEATURE_ROWS_INGESTED
from mlops.core.events import S3Upload
from mlops.steps.ingest_features import ingest_upload
from mlops.wiring.handlers import stores, transient_errors
from mlops.wiring.runtime import models_from_env

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@transient_errors
def handler(event: dict, context: LambdaContext) -> dict:
    upload = parse(event=event, model=S3Upload)
    bucket, key = upload.detail.bucket.name, upload.detail.object.key
    result = ingest_upload(stores(), models_from_env().feature_sets, bucket, key, online=stores().online)
    if result.feature_set:
        metrics.add_dimension(name="FeatureSet", value=result.feature_set)
    metrics.add_metric(name=METRIC_FEATURE_ROWS_INGESTED, unit=MetricUnit.Count, value=result.rows)
    return result.as_dict()
