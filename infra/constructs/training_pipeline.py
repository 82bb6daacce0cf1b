"""The training state machine, defined once (JSONPath), run by AWS and, offline, by the emulator.

Ingest: [ExtractWhileWarming: [extract | the data steps' and plan_trials' warm-ups] → analyze (one pass, or a
Distributed Map over the snapshot's shards → merge) → validate_data
| the training steps' warm-ups] → [anomalies? → record, notify, fail] → prepare → plan_trials →
Map(run_trial) → train → export → evaluate → validate_model → [blessed? → register →
(manual approval? wait for the task token → promote) → finalize] / [not blessed → finalize REJECTED].
Every Task retries transient errors with backoff and catches everything else into one failure path:
record the failure in the run record, publish to SNS, fail.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from constructs import Construct
from mlops.core.constants import (
    APPROVAL_TIMEOUT_S,
    ENV_TASK_RUN_ID,
    RUNS_PREFIX,
    STATE_MACHINE_TIMEOUT_S,
    TASK_INPUT_NAME,
    TASK_RESULT_NAME,
    WARM_TRIALS_FIELD,
    WARM_UP_EVENT,
)
from mlops.infra.constructs.fargate_training import FargateTraining
from mlops.infra.constructs.map_io import RESULT_WRITER_V2_FLAG, ScopedObjectsReader, ScopedResultWriter
from mlops.infra.functions import WARMED_WITH_EXTRACT, WARMED_WITH_INGEST

RETRYABLE = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "TransientError",
]
APPROVAL_TIMEOUT = Duration.seconds(APPROVAL_TIMEOUT_S)
# A warm-up is an init (Lambda allows 10 s) and a few clients; one that takes longer is abnormal, and the run stops
# waiting for it (the step will then cold-start, as without a warm-up).
WARM_UP_TIMEOUT_S = 30
# Shards analyzed at once by the statistics' Distributed Map: each is one analyze environment (DuckDB over a few
# million rows in bounded memory), and a 20M-row snapshot is ten of them at data.shard_rows' default.
SHARD_CONCURRENCY = 10


class TrainingPipeline(Construct):
    """The state machine over the step functions; exposes ``state_machine``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: dict[str, lambda_.IFunction],
        timeouts: dict[str, int],
        failure_topic: sns.ITopic,
        max_concurrency: int,
        log_retention: logs.RetentionDays,
        artifacts: s3.IBucket,
        fargate: FargateTraining,
    ) -> None:
        super().__init__(scope, construct_id)
        self.node.set_context(RESULT_WRITER_V2_FLAG, True)  # before any child: see mlops.infra.constructs.map_io
        self._functions = functions
        self._artifacts = artifacts
        self._timeouts = timeouts

        self._topic = failure_topic
        failed = sfn.Fail(self, "RunFailed", error="PipelineFailed", cause="A step failed; see the run record.")
        notify = self._notify(
            "NotifyFailure",
            "serverless-mlops run failed",
            {"error": sfn.JsonPath.object_at("$.error"), "execution": sfn.JsonPath.execution_id},
            then=failed,
        )

        record_failure = self._finalize("RecordFailure", "FAILED", {"error": sfn.JsonPath.object_at("$.error")})
        record_failure.add_catch(notify, result_path="$.finalize_error")
        record_failure.next(notify)
        self._on_error = record_failure

        # The data-validation branch: not an exception, a verdict.
        data_failed = sfn.Fail(
            self, "DataValidationFailed", error="DataValidationFailed", cause="Data anomalies; see the run record."
        )
        data_notify = self._notify(
            "NotifyDataAnomalies",
            "serverless-mlops run stopped: data anomalies",
            {
                "anomalies": sfn.JsonPath.string_at("$.validate_data.anomalies.uri"),
                "errors": sfn.JsonPath.number_at("$.validate_data.num_errors"),
            },
            then=data_failed,
        )
        record_anomalies = self._finalize(
            "RecordAnomalies", "FAILED", {"validate_data": sfn.JsonPath.object_at("$.validate_data")}
        )
        record_anomalies.add_catch(data_notify, result_path="$.finalize_error")
        record_anomalies.next(data_notify)

        # Inside the Ingest Parallel a state may not jump outside it: these three have no catch of their own, the
        # Parallel catches for them (the error, name and cause, is the step's).
        extract = self._task("Extract", "extract", result_path="$.extract", catch=False)
        analyze = self._task("Analyze", "analyze", result_path="$.analyze", catch=False)
        validate_data = self._task("ValidateData", "validate_data", result_path="$.validate_data", catch=False)
        statistics = self._statistics(analyze, validate_data)
        prepare = self._step("Prepare", "prepare", "$.prepare")
        plan = self._step("PlanTrials", "plan_trials", "$.plan")

        # Inside the Map a state may not jump outside it. A trial that dies (out of memory, past its
        # timeout, a crash) is caught inside and becomes a FAILED trial; train fails only if none succeeded.
        run_trial = self._task("RunTrial", "run_trial", result_path=None, catch=False)
        trial_failed = sfn.Pass(
            self,
            "TrialFailed",
            parameters={
                "trial_id": sfn.JsonPath.string_at("$.trial.trial_id"),
                "family": sfn.JsonPath.string_at("$.trial.family"),
                "params": sfn.JsonPath.object_at("$.trial.params"),
                "status": "FAILED",
                "error": sfn.JsonPath.string_at("$.failure.Error"),
                "cause": sfn.JsonPath.string_at("$.failure.Cause"),
            },
        )
        run_trial.add_catch(trial_failed, result_path="$.failure")
        tune = sfn.Map(
            self,
            "Tune",
            items_path="$.plan.trials",
            max_concurrency=max_concurrency,
            item_selector={
                "run_id.$": "$.run_id",
                "model.$": "$.model",
                "dataset.$": "$.prepare.dataset",
                "trial.$": "$$.Map.Item.Value",
            },
            result_path="$.trials",
        )
        tune.item_processor(run_trial)
        tune.add_catch(self._on_error, result_path="$.error")

        train = self._step("Train", "train", "$.train")
        refit = self._refit(train, fargate)
        export = self._step("Export", "export", "$.export")
        evaluate = self._step("Evaluate", "evaluate", "$.evaluate")
        validate_model = self._step("ValidateModel", "validate_model", "$.validate_model")
        register = self._step("Register", "register", "$.register")

        succeed = sfn.Succeed(self, "Done")
        finalize_ok = self._finalize(
            "RecordSuccess",
            "SUCCEEDED",
            {"evaluate": sfn.JsonPath.object_at("$.evaluate"), "register": sfn.JsonPath.object_at("$.register")},
        )
        finalize_ok.add_catch(self._on_error, result_path="$.error")
        finalize_ok.next(succeed)
        not_blessed = sfn.Succeed(self, "NotBlessed", comment="The candidate was rejected; the champion stays.")
        finalize_rejected = self._finalize(
            "RecordRejection",
            "REJECTED",
            {
                "evaluate": sfn.JsonPath.object_at("$.evaluate"),
                "validate_model": sfn.JsonPath.object_at("$.validate_model"),
            },
        )
        finalize_rejected.add_catch(self._on_error, result_path="$.error")
        finalize_rejected.next(not_blessed)

        await_approval = tasks.LambdaInvoke(
            self,
            "AwaitApproval",
            lambda_function=functions["await_approval"],
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object(
                {
                    "token": sfn.JsonPath.task_token,
                    "run_id": sfn.JsonPath.string_at("$.run_id"),
                    "model": sfn.JsonPath.string_at("$.model"),
                    "version": sfn.JsonPath.number_at("$.register.version"),
                }
            ),
            result_path="$.approval",
            task_timeout=sfn.Timeout.duration(APPROVAL_TIMEOUT),
            retry_on_service_exceptions=False,
        )
        self._protect(await_approval)
        promote = self._task(
            "Promote",
            "promote",
            result_path="$.promote",
            payload=sfn.TaskInput.from_object(
                {
                    "run_id": sfn.JsonPath.string_at("$.run_id"),
                    "model": sfn.JsonPath.string_at("$.model"),
                    "version": sfn.JsonPath.number_at("$.register.version"),
                    "approval": sfn.JsonPath.object_at("$.approval"),
                }
            ),
        )
        needs_approval = (
            sfn.Choice(self, "NeedsApproval?")
            .when(sfn.Condition.boolean_equals("$.register.promoted", False), await_approval.next(promote))
            .otherwise(finalize_ok)
        )
        promote.next(finalize_ok)

        blessed = (
            sfn.Choice(self, "Blessed?")
            .when(sfn.Condition.boolean_equals("$.validate_model.blessed", True), register.next(needs_approval))
            .otherwise(finalize_rejected)
        )
        train.next(export)
        self._task_result.next(export)
        export.next(evaluate).next(validate_model).next(blessed)
        data_ok = (
            sfn.Choice(self, "DataValid?")
            .when(sfn.Condition.boolean_equals("$.validate_data.passed", False), record_anomalies)
            .otherwise(prepare.next(plan).next(tune).next(refit))
        )
        with_extract = self._warmed("ExtractWhileWarming", extract, WARMED_WITH_EXTRACT, max_concurrency)
        ingest = self._warmed("Ingest", with_extract.next(statistics), WARMED_WITH_INGEST, max_concurrency)
        ingest.add_catch(self._on_error, result_path="$.error")
        definition = ingest.next(data_ok)

        # Under /aws/vendedlogs/: AWS's advice, so log delivery does not grow the account's resource policy.
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{Stack.of(self).stack_name}-training",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            query_language=sfn.QueryLanguage.JSON_PATH,
            timeout=Duration.seconds(STATE_MACHINE_TIMEOUT_S),  # the run lock derives from the same budget
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            comment="serverless-mlops continuous training",
        )

    def _refit(self, train: tasks.LambdaInvoke, fargate: FargateTraining) -> sfn.Choice:
        """Where the chosen candidate is refit, as plan_trials decided (``$.plan.compute``): the train function, or
        an ECS Fargate task run with ``ecs:runTask.sync`` (on Fargate Spot where the model opts in) — the same step
        (:mod:`mlops.tasks.train`): its input, the state, written to ``runs/<run>/train/task-input.json``; its result
        read back from ``task-result.json`` into ``$.train``, where the train function puts its own. A task that
        stops with a non-zero exit code (killed for memory, an error) fails the state (``States.TaskFailed``, the
        task's description as the cause) into the failure path: the run record names the stop reason and exit
        code, and the champion is untouched."""
        bucket = self._artifacts.bucket_name
        objects = [self._artifacts.arn_for_objects(f"{RUNS_PREFIX}*/train/*")]
        run_key = f"{RUNS_PREFIX}{{}}/train/"
        write_input = tasks.CallAwsService(
            self,
            "WriteTaskInput",
            service="s3",
            action="putObject",
            iam_action="s3:PutObject",
            iam_resources=objects,
            parameters={
                "Bucket": bucket,
                "Key": sfn.JsonPath.format(run_key + TASK_INPUT_NAME, sfn.JsonPath.string_at("$.run_id")),
                "Body": sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$")),
                "ContentType": "application/json",
            },
            result_path=sfn.JsonPath.DISCARD,
            task_timeout=sfn.Timeout.duration(Duration.seconds(30)),
        )
        read_result = tasks.CallAwsService(
            self,
            "ReadTaskResult",
            service="s3",
            action="getObject",
            iam_action="s3:GetObject",
            iam_resources=objects,
            parameters={
                "Bucket": bucket,
                "Key": sfn.JsonPath.format(run_key + TASK_RESULT_NAME, sfn.JsonPath.string_at("$.run_id")),
            },
            result_selector={"result": sfn.JsonPath.string_to_json(sfn.JsonPath.string_at("$.Body"))},
            result_path="$.train",
            task_timeout=sfn.Timeout.duration(Duration.seconds(30)),
        )
        self._task_result = sfn.Pass(self, "TaskResult", input_path="$.train.result", result_path="$.train")
        read_result.next(self._task_result)
        runs = {
            spot: self._run_task("TrainOnFargateSpot" if spot else "TrainOnFargate", fargate, spot=spot)
            for spot in (False, True)
        }
        for sdk_call in (write_input, read_result):
            sdk_call.add_retry(
                errors=["S3.SdkClientException", "S3.S3Exception"], max_attempts=3, interval=Duration.seconds(2)
            )
            sdk_call.add_catch(self._on_error, result_path="$.error")
        for run_task in runs.values():  # a task that ran and failed is not retried: its failure is the run's
            run_task.add_retry(errors=["ECS.SdkClientException"], max_attempts=3, interval=Duration.seconds(5))
            run_task.add_catch(self._on_error, result_path="$.error")
            run_task.next(read_result)
        capacity = (
            sfn.Choice(self, "Spot?")
            .when(sfn.Condition.boolean_equals("$.plan.fargate.spot", True), runs[True])
            .otherwise(runs[False])
        )
        return (
            sfn.Choice(self, "RefitOn?")
            .when(sfn.Condition.string_equals("$.plan.compute", "fargate"), write_input.next(capacity))
            .otherwise(train)
        )

    def _run_task(self, state_id: str, fargate: FargateTraining, *, spot: bool) -> tasks.EcsRunTask:
        provider = "FARGATE_SPOT" if spot else "FARGATE"
        return tasks.EcsRunTask(
            self,
            state_id,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            cluster=fargate.cluster,
            task_definition=fargate.task_definition,
            launch_target=tasks.EcsFargateLaunchTarget(
                platform_version=ecs.FargatePlatformVersion.LATEST,
                capacity_provider_options=tasks.CapacityProviderOptions.custom(
                    [ecs.CapacityProviderStrategy(capacity_provider=provider, weight=1)]
                ),
            ),
            assign_public_ip=True,
            subnets=fargate.subnets,
            security_groups=[fargate.security_group],
            container_overrides=[
                tasks.ContainerOverride(
                    container_definition=fargate.container,
                    environment=[
                        tasks.TaskEnvironmentVariable(name=ENV_TASK_RUN_ID, value=sfn.JsonPath.string_at("$.run_id"))
                    ],
                )
            ],
            cpu=sfn.JsonPath.string_at("$.plan.fargate.cpu"),
            memory_mib=sfn.JsonPath.string_at("$.plan.fargate.memory"),
            task_timeout=sfn.Timeout.at("$.plan.fargate.timeout_s"),
            result_path=sfn.JsonPath.DISCARD,
        )

    def _statistics(self, analyze: tasks.LambdaInvoke, then: tasks.LambdaInvoke) -> sfn.Choice:
        """The snapshot's statistics, then ``then``: ``analyze`` in one pass, or — when extract cut the snapshot into
        shards (``data.shards``, ``data.shard_rows``) — a Distributed Map over the shards' objects (its ItemReader
        lists them, so a snapshot of any number of shards fans out; each child writes its partial statistics to S3
        and returns where; the children's results go to S3 through the ResultWriter, not into the state), then the
        merge, which checks it has one partial per shard extract listed before it writes the statistics artifact.
        A shard that fails after its retries fails the Map (no failure is tolerated: statistics missing a shard
        would be wrong, not partial), and the Ingest Parallel catches it into the failure path."""
        shard = self._task("AnalyzeShard", "analyze", result_path=None, catch=False)
        shards = sfn.DistributedMap(
            self,
            "AnalyzeShards",
            comment="Partial statistics of each shard of the snapshot, merged by MergeStatistics",
            item_reader=ScopedObjectsReader(
                self._artifacts, sfn.JsonPath.string_at("$.extract.shards.prefix"), scope=f"{RUNS_PREFIX}*"
            ),
            item_selector={
                "run_id.$": "$.run_id",
                "model.$": "$.model",
                "shard.$": "$$.Map.Item.Value",
                "plan.$": "$.extract.shards.plan",
            },
            max_concurrency=SHARD_CONCURRENCY,
            result_writer_v2=ScopedResultWriter(
                self._artifacts, sfn.JsonPath.string_at("$.extract.shards.results"), scope=f"{RUNS_PREFIX}*"
            ),
            result_path="$.analyze_shards",
        )
        shards.item_processor(shard)
        merge = self._task("MergeStatistics", "analyze", result_path="$.analyze", catch=False)
        return (
            sfn.Choice(self, "Sharded?")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present("$.extract.shards"), sfn.Condition.is_not_null("$.extract.shards")
                ),
                shards.next(merge).next(then),
            )
            .otherwise(analyze.next(then))
        )

    def _warmed(
        self, state_id: str, steps: sfn.IChainable, functions: tuple[str, ...], max_concurrency: int
    ) -> sfn.Parallel:
        """Run ``steps`` while ``functions`` initialize beside them, and go on once both are done.

        Lambda initializes a function's execution environment (imports its bundle) on its first invocation;
        without this, each step's cold start (0.5-1.5 s) sits on the run's path one after another. Each branch
        beside ``steps`` sends one function the warm-up event (:data:`mlops.core.constants.WARM_UP_EVENT`) and waits for
        its answer, so when the Parallel ends every one of those environments has initialized and is idle, and the
        step that comes to it finds it warm. Waiting is the point: a step invoked while its warm-up is still
        initializing is not given that environment but a new one — a second cold start, all of it on the path —
        whereas here the run waits only for what is left of the slowest init once ``steps`` are done. The tuning
        Map gets as many environments as it runs at once. A warm-up that fails or times out ends its branch as a
        success: it costs the step a cold start, never the run. The Parallel's output is ``steps``' own."""
        parallel = sfn.Parallel(
            self,
            state_id,
            comment="The steps, while the coming steps' execution environments initialize beside them",
            output_path="$[0]",  # the steps' state; the warm-ups' answers are dropped
        )
        parallel.branch(steps)
        for fn in functions:
            for copy in range(max_concurrency if fn == "run_trial" else 1):
                warm = tasks.LambdaInvoke(
                    self,
                    f"WarmUp-{fn}-{copy}",
                    lambda_function=self._functions[fn],
                    payload=sfn.TaskInput.from_object(WARM_UP_EVENT),
                    payload_response_only=True,  # the answer, {"warm": true}, is the branch's whole output
                    retry_on_service_exceptions=False,
                    task_timeout=sfn.Timeout.duration(Duration.seconds(WARM_UP_TIMEOUT_S)),
                )
                skipped = sfn.Succeed(
                    self, f"WarmUpSkipped-{fn}-{copy}", comment="A failed warm-up only means a cold start"
                )
                branch: sfn.IChainable = warm.add_catch(skipped)  # the error replaces the state: small, and dropped
                if fn == "run_trial" and copy > 0:
                    branch = self._unless_planned_below(copy, branch)
                parallel.branch(branch)
        return parallel

    def _unless_planned_below(self, copy: int, warm: sfn.IChainable) -> sfn.Choice:
        """The ``copy``-th trial environment's warm-up, run only if the model's plan runs more than ``copy`` trials
        at once: the trigger puts that number in the run's input (``warm_trials``: the model's own
        ``training.max_concurrency``, or its trial count if fewer), while the Map's own size is the largest any
        model asks for. A model with one trial warms one environment, not four inits it would never use (billed
        since 2025-08). A run started without the field warms them all."""
        return (
            sfn.Choice(self, f"Warm-run_trial-{copy}?")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present(f"$.{WARM_TRIALS_FIELD}"),
                    sfn.Condition.number_less_than_equals(f"$.{WARM_TRIALS_FIELD}", copy),
                ),
                sfn.Succeed(self, f"WarmUpNotNeeded-run_trial-{copy}", comment="Fewer trials run at once"),
            )
            .otherwise(warm)
        )

    def _notify(self, state_id: str, subject: str, fields: dict[str, object], *, then: sfn.Fail) -> tasks.SnsPublish:
        """Publish the run's identity and ``fields`` to the failure topic, then (even if that fails) ``then``."""
        task = tasks.SnsPublish(
            self,
            state_id,
            topic=self._topic,
            subject=subject,
            message=sfn.TaskInput.from_object(
                {"run_id": sfn.JsonPath.string_at("$.run_id"), "model": sfn.JsonPath.string_at("$.model"), **fields}
            ),
            result_path=sfn.JsonPath.DISCARD,
            task_timeout=sfn.Timeout.duration(Duration.seconds(30)),
        )
        task.add_retry(errors=["SNS.SdkClientException", "SNS.InternalErrorException"], max_attempts=3)
        task.add_catch(then, result_path="$.notify_error")
        task.next(then)
        return task

    def _task(
        self,
        state_id: str,
        fn: str,
        *,
        result_path: str | None,
        payload: sfn.TaskInput | None = None,
        catch: bool = True,
    ) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self,
            state_id,
            lambda_function=self._functions[fn],
            payload=payload,
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path=result_path,
            task_timeout=sfn.Timeout.duration(Duration.seconds(self._timeouts[fn] + 30)),
        )
        self._protect(task, catch=catch)
        return task

    def _protect(self, task: tasks.LambdaInvoke, *, catch: bool = True) -> None:
        task.add_retry(
            errors=RETRYABLE,
            interval=Duration.seconds(2),
            max_attempts=3,
            backoff_rate=2.0,
            jitter_strategy=sfn.JitterType.FULL,
        )
        if catch:
            task.add_catch(self._on_error, result_path="$.error")

    def _step(self, state_id: str, fn: str, result_path: str) -> tasks.LambdaInvoke:
        return self._task(state_id, fn, result_path=result_path)

    def _finalize(self, state_id: str, outcome: str, extra: dict[str, object]) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self,
            state_id,
            lambda_function=self._functions["finalize"],
            payload=sfn.TaskInput.from_object(
                {
                    "run_id": sfn.JsonPath.string_at("$.run_id"),
                    "model": sfn.JsonPath.string_at("$.model"),
                    "outcome": outcome,
                    **extra,
                }
            ),
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path="$.finalize",
            task_timeout=sfn.Timeout.duration(Duration.seconds(self._timeouts["finalize"] + 30)),
        )
        task.add_retry(
            errors=RETRYABLE,
            interval=Duration.seconds(2),
            max_attempts=3,
            backoff_rate=2.0,
            jitter_strategy=sfn.JitterType.FULL,
        )
        return task
