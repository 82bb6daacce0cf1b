"""Batch scoring: a small state machine of its own (a different workflow from training), run by AWS and, offline,
by the emulator.

Plan → Distributed Map over the plan's shards (an S3 JSON ItemReader; one shard per child, the job's pinned version
in the ItemBatcher's BatchInput; each child's Lambda retried, then the Map fails unless the model's tolerated share
of shards — the plan's ``tolerated_failure_percentage`` — absorbs it; results to S3 by the ResultWriter, the state
carrying only their reference) → Finish (rows in = rows out, one part per shard, the error share; manifest,
``_SUCCESS``). Any failure is recorded by Finish with the failure, then the execution fails naming it.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from constructs import Construct
from mlops.core.constants import RUNS_PREFIX, SCORED_PREFIX
from mlops.infra.constructs.map_io import RESULT_WRITER_V2_FLAG, ScopedResultWriter
from mlops.infra.constructs.training_pipeline import RETRYABLE

JOB_TIMEOUT = Duration.hours(24)
SHARD_RETRIES = 2  # a shard that fails for any reason is tried this many more times before it counts as failed
JOB_FAILED = "ScoringJobFailed"
# The Map's result files are scratch for Finish: under runs/ (expired by the lifecycle rule), one folder per Map Run.
RESULTS_PREFIX = f"{RUNS_PREFIX}scoring"


class ScoringWorkflow(Construct):
    """The scoring state machine over the plan, shard and finish functions; exposes ``state_machine``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        plan: lambda_.IFunction,
        shard: lambda_.IFunction,
        finish: lambda_.IFunction,
        timeouts: dict[str, int],
        artifacts: s3.IBucket,
        max_concurrency: int,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        # CDK renders ResultWriterV2 only under this flag: set on this construct, whatever the app's cdk.json says.
        self.node.set_context(RESULT_WRITER_V2_FLAG, True)
        failed = sfn.Fail(
            self,
            "JobFailed",
            error=JOB_FAILED,
            cause_path=sfn.JsonPath.string_at("$.failure.Cause"),
            comment="The job's failure, as recorded in its manifest and record",
        )
        record_failure = self._invoke(
            "RecordFailure", finish, timeouts["score_finish"], result_path="$.outcome", retry_all=False
        )
        record_failure.add_catch(failed, result_path="$.failure_recording")
        record_failure.next(failed)

        planned = self._invoke("Plan", plan, timeouts["score_plan"], result_path="$.plan", retry_all=False)
        planned.add_catch(record_failure, result_path="$.failure")

        # The child's output is the shard's results (what the ResultWriter writes for Finish).
        score = self._invoke("ScoreShard", shard, timeouts["score_shard"], result_path="$", retry_all=True)
        shards = sfn.DistributedMap(
            self,
            "Shards",
            comment="Each shard of the plan scored by the job's pinned version into its Parquet part",
            item_reader=ScopedJsonReader(
                artifacts, sfn.JsonPath.string_at("$.plan.shards_key"), scope=f"{SCORED_PREFIX}*"
            ),
            item_batcher=sfn.ItemBatcher(
                max_items_per_batch=1,
                batch_input={"job_id.$": "$.job_id", "model.$": "$.model", "version.$": "$.version"},
            ),
            map_execution_type=sfn.StateMachineType.STANDARD,  # a shard may score for up to 15 minutes
            max_concurrency=max_concurrency,
            tolerated_failure_percentage_path="$.plan.tolerated_failure_percentage",
            result_writer_v2=ScopedResultWriter(artifacts, RESULTS_PREFIX, scope=f"{RESULTS_PREFIX}/*"),
            result_path="$.results",
        )
        shards.item_processor(score)
        shards.add_catch(record_failure, result_path="$.failure")

        finished = self._invoke("Finish", finish, timeouts["score_finish"], result_path="$.outcome", retry_all=False)
        # A job the finisher judged failed has been recorded: it fails as judged. Anything else is recorded first.
        finished.add_catch(failed, errors=[JOB_FAILED], result_path="$.failure")
        finished.add_catch(record_failure, result_path="$.failure")
        definition = planned.next(shards).next(finished)

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{Stack.of(self).stack_name}-scoring",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            query_language=sfn.QueryLanguage.JSON_PATH,
            timeout=JOB_TIMEOUT,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            comment="serverless-mlops batch scoring (S3 to S3)",
        )

    def _invoke(
        self, state_id: str, fn: lambda_.IFunction, timeout_s: int, *, result_path: str, retry_all: bool
    ) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self,
            state_id,
            lambda_function=fn,
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path=result_path,
            task_timeout=sfn.Timeout.duration(Duration.seconds(timeout_s + 30)),
        )
        task.add_retry(
            errors=RETRYABLE,
            interval=Duration.seconds(2),
            max_attempts=3,
            backoff_rate=2.0,
            jitter_strategy=sfn.JitterType.FULL,
        )
        if retry_all:  # a shard that failed otherwise (out of memory, a crash): tried again before it counts
            task.add_retry(errors=["States.ALL"], interval=Duration.seconds(5), max_attempts=SHARD_RETRIES)
        return task


class ScopedJsonReader(sfn.S3JsonItemReader):
    """``s3:getObject`` of a JSON list at ``key`` (a JSONPath), allowed to read only objects under ``scope``: CDK's
    own reader grants every object of the bucket, the key being known only at run time."""

    def __init__(self, bucket: s3.IBucket, key: str, *, scope: str) -> None:
        super().__init__(bucket=bucket, key=key)
        self._grant_bucket = bucket
        self._scope = scope

    def provide_policy_statements(self) -> list[iam.PolicyStatement]:
        return [
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[self._grant_bucket.arn_for_objects(self._scope)])
        ]
