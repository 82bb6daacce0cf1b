"""CDK assertions per stack: safe defaults, retries and catches, the S3 → EventBridge rule, least privilege."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk.assertions import Match

from mlops.infra.functions import ALL_FUNCTIONS, PIPELINE_FUNCTIONS, SCORING_FUNCTIONS
from mlops.local.template import resources_of_type, state_machine_definition, walk_states

pytestmark = pytest.mark.infra


def test_given_the_app_when_synthesized_then_five_stacks_and_cdk_nag_is_clean(synth):
    assert sorted(synth.templates) == [
        "Mlops-dev-Monitoring",
        "Mlops-dev-Pipeline",
        "Mlops-dev-Serving",
        "Mlops-dev-Storage",
        "Mlops-dev-Triggers",
    ]
    report = synth.outdir / "policy-validation-report.json"
    if report.exists():  # written only when a plugin reports something
        body = json.loads(report.read_text())
        violations = [v for p in body.get("pluginReports", []) for v in p.get("violations", [])]
        assert violations == []


def test_given_storage_then_buckets_are_encrypted_versioned_private_and_ssl_only(synth):
    t = synth.template("storage")
    t.resource_count_is("AWS::S3::Bucket", 3)
    t.all_resources_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {"ServerSideEncryptionConfiguration": Match.any_value()},
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
        },
    )
    policies = resources_of_type(synth.raw("storage"), "AWS::S3::BucketPolicy")
    assert len(policies) == 3
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )
    t.has_resource_properties(  # CDK enables EventBridge delivery on the landing bucket through this resource
        "Custom::S3BucketNotifications", {"NotificationConfiguration": {"EventBridgeConfiguration": {}}}
    )
    t.has_resource_properties(
        "AWS::S3::Bucket",
        {"LifecycleConfiguration": {"Rules": Match.array_with([Match.object_like({"Prefix": "runs/"})])}},
    )


def test_given_storage_then_tables_have_pitr_and_encryption(synth):
    t = synth.template("storage")
    t.resource_count_is("AWS::DynamoDB::GlobalTable", 4)  # runs, models, lineage; the feature store's online table
    t.has_resource_properties(
        "AWS::DynamoDB::GlobalTable", {"TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True}}
    )
    t.all_resources_properties(
        "AWS::DynamoDB::GlobalTable",
        {
            "SSESpecification": {"SSEEnabled": True},
            "Replicas": [Match.object_like({"PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}})],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        },
    )


def test_given_prod_then_stateful_resources_are_retained(prod_synth):
    raw = prod_synth.raw("storage")
    for kind in ("AWS::S3::Bucket", "AWS::DynamoDB::GlobalTable"):
        for res in resources_of_type(raw, kind).values():
            assert res["DeletionPolicy"] == "Retain"


def test_given_the_state_machine_then_every_task_retries_and_catches(synth):
    definition = state_machine_definition(synth.raw("pipeline"))
    states = walk_states(definition)
    tasks = {n: s for n, s in states.items() if s["Type"] == "Task"}
    assert {
        "Extract",
        "Analyze",
        "AnalyzeShard",
        "MergeStatistics",
        "ValidateData",
        "Prepare",
        "PlanTrials",
        "RunTrial",
        "Train",
        "Export",
        "Evaluate",
        "ValidateModel",
        "Register",
        "AwaitApproval",
        "Promote",
    } <= set(tasks)
    for name, state in tasks.items():
        if name.startswith("WarmUp-"):
            continue  # never worth a retry, and caught into a success (their own test below)
        assert state.get("Retry"), f"{name} has no Retry"
        if ":::" not in state["Resource"] or ":::lambda:" in state["Resource"]:  # a function (its ARN, or invoke)
            assert any("TransientError" in r["ErrorEquals"] for r in state["Retry"])
        else:  # a service integration (SNS, S3, ECS) retries its own client's transient errors
            service = {"sns": "SNS", "aws-sdk:s3": "S3", "ecs": "ECS"}[
                state["Resource"].split(":::")[1].rsplit(":", 1)[0]
            ]
            assert any(f"{service}.SdkClientException" in r["ErrorEquals"] for r in state["Retry"]), name
        assert state.get("TimeoutSeconds") or state.get("TimeoutSecondsPath"), f"{name} has no timeout"
        if name in ("RunTrial", "Extract", "Analyze", "AnalyzeShard", "MergeStatistics", "ValidateData"):
            continue  # inside a Map (its Catch covers it) or the Ingest Parallel (whose Catch covers them)
        assert state.get("Catch"), f"{name} has no Catch"
    assert states["Ingest"]["Catch"][0]["Next"] == "RecordFailure"
    tune = states["Tune"]
    assert tune["Type"] == "Map" and tune["Catch"] and tune["MaxConcurrency"] == 4
    assert states["AwaitApproval"]["Resource"].endswith("lambda:invoke.waitForTaskToken")
    assert "QueryLanguage" not in definition or definition["QueryLanguage"] == "JSONPath"


def test_given_the_state_machine_then_failures_are_recorded_notified_and_failed(synth):
    states = walk_states(state_machine_definition(synth.raw("pipeline")))
    assert states["Ingest"]["Catch"][0]["Next"] == "RecordFailure"  # extract, analyze, validate_data
    assert states["Prepare"]["Catch"][0]["Next"] == "RecordFailure"
    assert states["RecordFailure"]["Next"] == "NotifyFailure"
    assert states["NotifyFailure"]["Resource"].endswith(":sns:publish")
    assert states["NotifyFailure"]["Next"] == "RunFailed" and states["RunFailed"]["Type"] == "Fail"
    choice = states["DataValid?"]
    assert choice["Choices"][0] == {
        "Variable": "$.validate_data.passed",
        "BooleanEquals": False,
        "Next": "RecordAnomalies",
    }


def test_given_the_pipeline_then_functions_are_traced_arm64_python312_with_log_retention(synth):
    t = synth.template("pipeline")
    t.resource_count_is("AWS::Lambda::Function", len(PIPELINE_FUNCTIONS) + len(SCORING_FUNCTIONS) + 1)  # + ingestion
    t.all_resources_properties(
        "AWS::Lambda::Function",
        {
            "TracingConfig": {"Mode": "Active"},
            "Architectures": ["arm64"],
            "Runtime": "python3.12",
            "LoggingConfig": Match.object_like({"LogFormat": "JSON"}),
        },
    )
    t.all_resources_properties("AWS::Logs::LogGroup", {"RetentionInDays": 14})
    t.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {"TracingConfiguration": {"Enabled": True}, "LoggingConfiguration": Match.object_like({"Level": "ALL"})},
    )
    t.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})


def _statements(template: dict, role_prefix: str = "") -> list[dict]:
    """Every policy statement of a stack (or of the roles whose logical id starts with ``role_prefix``)."""
    out = []
    for policy in resources_of_type(template, "AWS::IAM::Policy").values():
        roles = [r.get("Ref", "") for r in policy["Properties"].get("Roles", [])]
        if role_prefix and not any(r.startswith(role_prefix) for r in roles):
            continue
        out.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return out


def test_given_all_policies_then_no_action_is_a_service_wildcard(synth):
    for name in ("storage", "pipeline", "triggers", "serving", "monitoring"):
        for st in _statements(synth.raw(name)):
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            for action in actions:
                assert action != "*" and not action.endswith(":*"), f"{name}: {action}"


def test_given_the_state_machine_role_then_it_invokes_only_its_own_functions(synth):
    raw = synth.raw("pipeline")
    roles = [k for k, v in resources_of_type(raw, "AWS::IAM::Role").items() if "StateMachine" in k]
    policies = [
        p
        for p in resources_of_type(raw, "AWS::IAM::Policy").values()
        if any(r["Ref"] in roles for r in p["Properties"]["Roles"])
    ]
    invoked = set()
    for p in policies:
        for st in p["Properties"]["PolicyDocument"]["Statement"]:
            if st["Action"] == "lambda:InvokeFunction":
                for r in st["Resource"]:
                    target = r["Fn::GetAtt"][0] if "Fn::GetAtt" in r else r["Fn::Join"][1][0]["Fn::GetAtt"][0]
                    invoked.add(target)
    functions = set(resources_of_type(raw, "AWS::Lambda::Function"))
    # every function of the stack but the feature ingestion (EventBridge invokes it)
    assert invoked == functions - {k for k in functions if "BucketNotifications" in k or "ingestfeatures" in k}


def test_given_the_triggers_then_new_data_under_the_prefix_reaches_the_trigger(synth):
    t = synth.template("triggers")
    t.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {
                    "bucket": {"name": [Match.any_value()]},
                    "object": {"key": [{"prefix": "breast-cancer/"}, {"prefix": "diabetes/"}]},
                },
            },
            "Targets": [Match.object_like({"DeadLetterConfig": Match.any_value(), "RetryPolicy": Match.any_value()})],
        },
    )
    t.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(7 days)"})  # per model
    t.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(14 days)"})
    t.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": Match.object_like(
                {"source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"]}
            )
        },
    )
    t.resource_count_is("AWS::Lambda::Function", 1)
    assert {f.name for f in ALL_FUNCTIONS} == {f.name for f in (*PIPELINE_FUNCTIONS, *SCORING_FUNCTIONS)} | {
        "trigger",
        "serve",
        "capture",
        "monitor",
        "ingest_features",
    }


CFN_LINT = str(Path(sys.executable).with_name("cfn-lint"))  # cfnlint has no __main__: `python -m` cannot run it


def test_given_the_templates_when_linted_then_cfn_lint_reports_no_errors(synth):
    templates = sorted(str(p) for p in synth.outdir.glob("*.template.json"))
    assert len(templates) == 5
    proc = subprocess.run([CFN_LINT, "--non-zero-exit-code", "error", *templates], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_given_serving_then_every_method_requires_iam_and_the_stage_is_throttled_logged_traced(synth):
    t = synth.template("serving")
    methods = resources_of_type(synth.raw("serving"), "AWS::ApiGateway::Method")
    assert len(methods) == 5 + 1 + 3 * 2  # the root routes, GET /models, three routes per model
    assert {m["Properties"]["AuthorizationType"] for m in methods.values()} == {"AWS_IAM"}
    t.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": "live",
            "TracingEnabled": True,
            "AccessLogSetting": Match.object_like({"DestinationArn": Match.any_value()}),
            "MethodSettings": Match.array_with(
                [
                    Match.object_like(
                        {"ThrottlingRateLimit": 100, "ThrottlingBurstLimit": 200, "DataTraceEnabled": False}
                    )
                ]
            ),
            "Variables": {"alias": "live"},
        },
    )
    t.has_resource_properties("AWS::Lambda::Alias", {"Name": "live"})
    t.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Architectures": ["arm64"],
            "MemorySize": 1024,
            "Environment": {
                "Variables": Match.object_like({"MLOPS_MODEL_CACHE_SECONDS": "30", "MLOPS_MAX_PREDICT_ROWS": "1000"})
            },
        },
    )
    t.resource_count_is("AWS::ApiGateway::UsagePlan", 0)


def test_given_serving_then_the_function_only_reads_models_and_artifacts(synth):
    actions = {
        a
        for st in _statements(synth.raw("serving"), "ServeRole")
        for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
    }
    assert "s3:GetObject*" in actions
    assert not {
        a
        for a in actions
        if a.startswith(("dynamodb:Put", "dynamodb:Update", "dynamodb:Delete", "s3:Put", "s3:Delete", "states:"))
    }


@pytest.fixture(scope="module")
def staging_synth(tmp_path_factory):
    from tests.infra.conftest import Synth

    return Synth(tmp_path_factory.mktemp("cdk.out.staging"), "staging")


def test_given_api_key_auth_then_a_usage_plan_throttles_and_caps_the_key(staging_synth):
    t = staging_synth.template("serving")
    methods = resources_of_type(staging_synth.raw("serving"), "AWS::ApiGateway::Method")
    assert all(m["Properties"]["ApiKeyRequired"] for m in methods.values())
    t.has_resource_properties(
        "AWS::ApiGateway::UsagePlan",
        {"Throttle": {"RateLimit": 100, "BurstLimit": 200}, "Quota": {"Limit": 100000, "Period": "DAY"}},
    )
    t.resource_count_is("AWS::ApiGateway::ApiKey", 1)


def test_given_prod_then_serving_reserves_concurrency(prod_synth):
    prod_synth.template("serving").has_resource_properties(
        "AWS::Lambda::Function", {"ReservedConcurrentExecutions": 50, "MemorySize": 2048}
    )


def test_given_the_notifications_topic_then_its_key_lets_the_state_machine_cloudwatch_and_eventbridge_publish(synth):
    raw = synth.raw("pipeline")
    (key,) = resources_of_type(raw, "AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
    services = set()
    for st in key["Properties"]["KeyPolicy"]["Statement"]:
        named = st.get("Principal", {}).get("Service", [])
        services |= {named} if isinstance(named, str) else set(named)
    assert {"cloudwatch.amazonaws.com", "events.amazonaws.com"} <= services
    (topic,) = resources_of_type(raw, "AWS::SNS::Topic").values()
    assert topic["Properties"]["KmsMasterKeyId"] == {
        "Fn::GetAtt": [next(iter(resources_of_type(raw, "AWS::KMS::Key"))), "Arn"]
    }
    roles = [k for k in resources_of_type(raw, "AWS::IAM::Role") if "StateMachine" in k]
    kms_actions = {
        a
        for p in resources_of_type(raw, "AWS::IAM::Policy").values()
        if any(r.get("Ref") in roles for r in p["Properties"]["Roles"])
        for st in p["Properties"]["PolicyDocument"]["Statement"]
        for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
        if a.startswith("kms:")
    }
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= kms_actions


def test_given_the_run_budget_then_the_lock_outlives_every_path_through_the_state_machine(synth):
    from mlops.core.constants import APPROVAL_TIMEOUT_S, RUN_LOCK_SECONDS

    definition = state_machine_definition(synth.raw("pipeline"))
    assert definition["TimeoutSeconds"] < RUN_LOCK_SECONDS
    states = walk_states(definition)
    assert states["AwaitApproval"]["TimeoutSeconds"] == APPROVAL_TIMEOUT_S
    # The warm-up's branches run side by side: one of them is on the path.
    warm_up = max(s["TimeoutSeconds"] for n, s in states.items() if n.startswith("WarmUp-"))
    worst = warm_up + sum(
        s.get("TimeoutSeconds", 0) for n, s in states.items() if s["Type"] == "Task" and not n.startswith("WarmUp-")
    )
    assert definition["TimeoutSeconds"] < RUN_LOCK_SECONDS and worst < RUN_LOCK_SECONDS + APPROVAL_TIMEOUT_S


def test_given_the_trigger_then_failed_events_land_in_a_queue_that_raises_an_alarm(synth):
    raw = synth.raw("triggers")
    (config,) = resources_of_type(raw, "AWS::Lambda::EventInvokeConfig").values()
    assert config["Properties"]["MaximumRetryAttempts"] == 2
    destination = config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    (queue,) = resources_of_type(raw, "AWS::SQS::Queue")
    assert destination == {"Fn::GetAtt": [queue, "Arn"]}
    (alarm,) = resources_of_type(raw, "AWS::CloudWatch::Alarm").values()
    assert alarm["Properties"]["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    assert alarm["Properties"]["AlarmActions"] and alarm["Properties"]["Threshold"] == 0


def test_given_the_state_machine_then_a_trial_that_dies_is_caught_inside_the_map(synth):
    states = walk_states(state_machine_definition(synth.raw("pipeline")))
    catch = states["RunTrial"]["Catch"]
    assert catch == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "TrialFailed"}]
    assert states["TrialFailed"]["Type"] == "Pass" and states["TrialFailed"]["Parameters"]["status"] == "FAILED"


def test_given_the_functions_then_none_reads_the_bootstrap_bucket_and_writers_are_scoped_to_their_prefixes(synth):
    for name in ("pipeline", "triggers", "serving", "monitoring"):
        text = json.dumps(_statements(synth.raw(name)))
        assert "cdk-hnb659fds-assets" not in text, f"{name}: a role may read the bootstrap bucket"
    prefixes = (
        "/runs/*",
        "/runs/scoring/*",
        "/schemas/*",
        "/models/*",
        "/captures/*",
        "/feedback/*",
        "/monitoring/*",
        "/sites/*",
        "/scored/*",
        "/features/*",
    )
    for name in ("pipeline", "serving", "triggers", "monitoring"):
        for st in _statements(synth.raw(name)):
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            if any(a.startswith(("s3:PutObject", "s3:DeleteObject")) for a in actions):
                resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                flat = [json.dumps(r) for r in resources]
                assert all(any(p in f for p in prefixes) for f in flat), (name, st)
            assert not any(a.startswith("s3:DeleteObject") for a in actions), (name, st)


def test_given_the_deployed_request_model_then_the_local_gateway_refuses_what_api_gateway_would(synth):
    from mlops.local.apigw import bad_request_body, call, gateway_check, request_models

    models = request_models(synth.raw("serving"))
    answer = bad_request_body(synth.raw("serving"))  # the BAD_REQUEST_BODY gateway response: what a body must be
    assert json.loads(answer)["message"].startswith("Invalid request body: it must be JSON")
    assert "records (predict) or labels (feedback): a list of 1 to 1000 JSON objects" in json.loads(answer)["message"]
    assert set(models) == {
        (m, f"{at}/{p}")
        for m, p in (("POST", "predict"), ("POST", "feedback"))
        for at in ("", "/models/breast-cancer", "/models/diabetes")
    }
    assert models[("POST", "/feedback")]["required"] == ["labels"]
    assert models[("POST", "/predict")]["properties"]["records"]["maxItems"] == 1000
    invalid = (400, answer)
    for body in (
        json.dumps({"records": [{}] * 1001}),
        json.dumps({"records": []}),
        "{not json",
        "[" * 5000 + "]" * 5000,
        json.dumps({"records": [{"a": 1}], "x": 1}),
    ):
        assert gateway_check("POST", "/predict", body, models, answer) == invalid
    assert gateway_check("POST", "/predict", json.dumps({"records": [{"a": 1}]}), models, answer) is None
    assert gateway_check("GET", "/health", None, models) is None
    # A body under API Gateway's 10 MB whose event passes Lambda's 6 MB: API Gateway's own 413, never a 5xx.
    quotes = json.dumps({"records": [{"note": '"' * 3_000_000}]})
    status, _, body = call("POST", "/predict", quotes)
    assert status == 413 and json.loads(body) == {"message": "Request Too Long"}


def test_given_the_functions_then_each_role_writes_only_to_its_own_log_group(synth):
    for name in ("pipeline", "triggers", "serving"):
        raw = synth.raw(name)
        functions = {
            k: f
            for k, f in resources_of_type(raw, "AWS::Lambda::Function").items()
            if "MLOPS_FUNCTION" in json.dumps(f)
        }
        assert functions
        for logical, fn in functions.items():
            role = raw["Resources"][fn["Properties"]["Role"]["Fn::GetAtt"][0]]
            assert "ManagedPolicyArns" not in role["Properties"], f"{logical} has a managed policy"
            log_group = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
            writes = [
                st
                for p in resources_of_type(raw, "AWS::IAM::Policy").values()
                if {"Ref": fn["Properties"]["Role"]["Fn::GetAtt"][0]} in p["Properties"]["Roles"]
                for st in p["Properties"]["PolicyDocument"]["Statement"]
                if "logs:PutLogEvents" in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
            ]
            assert writes and all(st["Resource"] == {"Fn::GetAtt": [log_group, "Arn"]} for st in writes), logical


def test_given_a_run_then_its_coming_steps_initialize_beside_the_steps_before_them_and_a_warm_up_never_fails_it(
    synth,
):
    from mlops.core.constants import WARM_TRIALS_FIELD, WARM_UP_EVENT
    from mlops.infra.functions import WARMED, WARMED_WITH_EXTRACT, WARMED_WITH_INGEST

    definition = state_machine_definition(synth.raw("pipeline"))
    states = walk_states(definition)
    functions = {
        logical: r["Properties"]["Environment"]["Variables"]["MLOPS_FUNCTION"]
        for logical, r in resources_of_type(synth.raw("pipeline"), "AWS::Lambda::Function").items()
        if "MLOPS_FUNCTION" in r["Properties"].get("Environment", {}).get("Variables", {})
    }

    def warmed_beside(parallel: dict, path: list[str]) -> list[str]:
        """The functions warmed beside the first branch, whose states (in order) must be ``path``; the Parallel's
        output is that branch's alone."""
        assert parallel["Type"] == "Parallel" and parallel["OutputPath"] == "$[0]"
        steps, *warm_ups = parallel["Branches"]
        order, name = [], steps["StartAt"]
        while name:
            order.append(name)
            state = steps["States"][name]
            name = state.get("Next") or state.get("Default")  # a Choice: its usual way (the one-pass statistics)
        assert order == path
        warmed = []
        for branch in warm_ups:
            state = branch["States"][branch["StartAt"]]
            if state["Type"] == "Choice":  # a further trial environment: warmed only if the run's plan runs more
                (when,) = state["Choices"]
                copy = int(branch["StartAt"].rsplit("-", 1)[1].rstrip("?"))
                assert when["And"] == [
                    {"Variable": f"$.{WARM_TRIALS_FIELD}", "IsPresent": True},
                    {"Variable": f"$.{WARM_TRIALS_FIELD}", "NumericLessThanEquals": copy},
                ]
                assert branch["States"][when["Next"]]["Type"] == "Succeed"
                state = branch["States"][state["Default"]]
            # synchronous: the branch ends when the environment has initialized and answered
            # a direct invocation of the function (RequestResponse), its answer the branch's output
            assert state["Type"] == "Task" and state["Parameters"] == WARM_UP_EVENT and "ResultPath" not in state
            assert "Retry" not in state and state["TimeoutSeconds"] <= 30
            (catch,) = state["Catch"]  # a failed or late warm-up ends its branch as a success: a cold start, no more
            assert catch["ErrorEquals"] == ["States.ALL"] and branch["States"][catch["Next"]]["Type"] == "Succeed"
            logical, attribute = state["Resource"].strip("<>").split(".")  # placeholder_resolver's <Id.Arn>
            assert attribute == "Arn"
            warmed.append(functions[logical])
        return warmed

    def copies(fns: tuple[str, ...]) -> list[str]:
        return [f for f in fns for _ in range(states["Tune"]["MaxConcurrency"] if f == "run_trial" else 1)]

    assert definition["StartAt"] == "Ingest"
    ingest = definition["States"]["Ingest"]
    assert warmed_beside(ingest, ["ExtractWhileWarming", "Sharded?", "Analyze", "ValidateData"]) == copies(
        WARMED_WITH_INGEST
    )
    assert ingest["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}]
    assert ingest["Next"] == "DataValid?" and states["DataValid?"]["Default"] == "Prepare"
    inner = ingest["Branches"][0]["States"]["ExtractWhileWarming"]
    assert warmed_beside(inner, ["Extract"]) == copies(WARMED_WITH_EXTRACT)
    # inside, the steps retry as every step does and leave their errors to the Parallel's catch
    for name, branch in (("Extract", inner["Branches"][0]), ("Analyze", ingest["Branches"][0])):
        assert "Catch" not in branch["States"][name] and branch["States"][name]["Retry"]
    assert "extract" not in WARMED and {"await_approval", "promote"}.isdisjoint(WARMED)
    # no step is invoked asynchronously (only the feature ingestion, which EventBridge invokes, is)
    assert [k for k in resources_of_type(synth.raw("pipeline"), "AWS::Lambda::EventInvokeConfig")] == [
        k for k in resources_of_type(synth.raw("pipeline"), "AWS::Lambda::EventInvokeConfig") if "ingestfeatures" in k
    ]


def test_given_batch_scoring_then_a_distributed_map_reads_the_plan_and_batches_shards_with_the_pinned_version(
    synth,
):
    """#32: the scoring state machine as CDK's DistributedMap synthesizes it — the shape the emulator runs."""
    states = walk_states(state_machine_definition(synth.raw("pipeline"), machine="Scoring"))
    shards = states["Shards"]
    assert shards["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert shards["ItemReader"]["Resource"].endswith(":states:::s3:getObject")
    assert shards["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
    assert shards["ItemReader"]["Parameters"]["Key.$"] == "$.plan.shards_key"
    # Every shard is told the job's version, pinned once at the start (the execution's input), not the champion.
    assert shards["ItemBatcher"] == {
        "MaxItemsPerBatch": 1,
        "BatchInput": {"job_id.$": "$.job_id", "model.$": "$.model", "version.$": "$.version"},
    }
    assert shards["ToleratedFailurePercentagePath"] == "$.plan.tolerated_failure_percentage"
    assert shards["ResultWriter"]["Resource"].endswith(":states:::s3:putObject")
    assert shards["ResultWriter"]["Parameters"]["Prefix"] == "runs/scoring"
    assert shards["ResultPath"] == "$.results" and shards["Next"] == "Finish"
    # A failed shard is retried (any error) before it counts against the tolerance.
    retries = states["ScoreShard"]["Retry"]
    assert retries[-1]["ErrorEquals"] == ["States.ALL"] and retries[-1]["MaxAttempts"] >= 1
    # Every failure is recorded by the finisher, then the job fails; a job the finisher judged failed fails as judged.
    for name in ("Plan", "Shards"):
        assert states[name]["Catch"][0]["Next"] == "RecordFailure", name
    assert [c["ErrorEquals"] for c in states["Finish"]["Catch"]] == [["ScoringJobFailed"], ["States.ALL"]]
    assert states["RecordFailure"]["Next"] == "JobFailed" and states["JobFailed"]["Type"] == "Fail"
    # The state machine's own S3 access: the shard lists it reads and the results it writes, not the whole bucket.
    scoring_role = [
        st
        for k, p in resources_of_type(synth.raw("pipeline"), "AWS::IAM::Policy").items()
        if k.startswith("ScoringStateMachineRole")
        for st in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    s3 = [st for st in scoring_role if any(str(a).startswith("s3:") for a in _as_list(st["Action"]))]
    resources = [json.dumps(r) for st in s3 for r in _as_list(st["Resource"])]
    assert s3 and all(r.endswith(('/scored/*"]]}', '/runs/scoring/*"]]}')) for r in resources), resources


def test_given_batch_scoring_then_uploads_under_each_scoring_prefix_reach_the_trigger_which_may_start_jobs(synth):
    t = synth.template("triggers")
    t.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": Match.object_like(
                {
                    "detail": Match.object_like(
                        {"object": {"key": Match.array_with([{"prefix": "score/breast-cancer/"}])}}
                    )
                }
            )
        },
    )
    actions = [a for st in _statements(synth.raw("triggers")) for a in _as_list(st["Action"])]
    assert "states:StartExecution" in actions
    env = next(iter(resources_of_type(synth.raw("triggers"), "AWS::Lambda::Function").values()))
    assert "MLOPS_SCORING_STATE_MACHINE_ARN" in env["Properties"]["Environment"]["Variables"]


def _as_list(value):
    return value if isinstance(value, list) else [value]


def test_given_a_sharded_snapshot_then_a_distributed_map_lists_its_shards_and_merges_them_on_least_privilege(synth):
    """#29: the statistics fan out over the objects extract wrote under the run (ItemReader, paginated by AWS past
    1,000), each child the analyze function on one shard, no failure tolerated, results to S3 under the run; the
    state machine may list and write only under runs/ for it."""
    definition = state_machine_definition(synth.raw("pipeline"))
    states = walk_states(definition)
    choice = states["Sharded?"]
    assert choice["Choices"][0]["Next"] == "AnalyzeShards" and choice["Default"] == "Analyze"
    shards = states["AnalyzeShards"]
    assert shards["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert shards["ItemReader"]["Resource"].endswith(":states:::s3:listObjectsV2") or "listObjectsV2" in json.dumps(
        shards["ItemReader"]
    )
    assert shards["ItemReader"]["Parameters"]["Prefix.$"] == "$.extract.shards.prefix"
    assert shards["ItemSelector"]["shard.$"] == "$$.Map.Item.Value"
    assert shards["ItemSelector"]["plan.$"] == "$.extract.shards.plan"
    assert shards["ResultWriter"]["Parameters"]["Prefix.$"] == "$.extract.shards.results"
    assert not any(k.startswith("ToleratedFailure") for k in shards), "a missing shard would make wrong statistics"
    assert shards["Next"] == "MergeStatistics" and states["MergeStatistics"]["Next"] == "ValidateData"
    assert states["Analyze"]["Next"] == "ValidateData"
    s3_statements = [
        st
        for st in _statements(synth.raw("pipeline"), "TrainingStateMachineRole")
        if any(str(a).startswith("s3:") for a in _actions(st))
    ]
    assert s3_statements
    for st in s3_statements:
        text = json.dumps(st["Resource"])
        if _actions(st) == ["s3:ListBucket"]:
            assert st["Condition"] == {"StringLike": {"s3:prefix": "runs/*"}}
        else:
            # runs/* (the Map's reader and writer); the Fargate refit's input and result under runs/*/train/*
            assert text.endswith(('/runs/*"]]}', '/runs/*/train/*"]]}')), st


def test_given_extract_then_it_may_read_the_registry_it_checks_objects_against(synth):
    """extract reads the model's stored schema and the champion's statistics (the models table): granted read,
    not write. moto does not enforce IAM, so without this test the grant's absence showed only in AWS."""
    statements = _statements(synth.raw("pipeline"), "FnextractRole")
    tables = [st for st in statements if "dynamodb:Query" in _actions(st) and "Models" in json.dumps(st["Resource"])]
    assert tables, "extract cannot query the models table"
    assert not any(
        a.startswith(("dynamodb:Put", "dynamodb:Update", "dynamodb:Delete")) for st in tables for a in _actions(st)
    )


def _actions(statement: dict) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]


def test_given_plan_trials_then_it_is_told_run_trials_memory_to_check_a_split_fits(synth):
    functions = resources_of_type(synth.raw("pipeline"), "AWS::Lambda::Function").values()
    env = {
        f["Properties"]["Environment"]["Variables"].get("MLOPS_FUNCTION"): f["Properties"]["Environment"]["Variables"]
        for f in functions
        if "Environment" in f["Properties"]
    }
    trial = next(s for s in PIPELINE_FUNCTIONS if s.name == "run_trial")
    assert env["plan_trials"]["MLOPS_TRIAL_MEMORY_MB"] == str(trial.memory_mb)
    data = {s.name: s.ephemeral_mb for s in PIPELINE_FUNCTIONS if s.bundle == "data"}
    assert data and all(mb == 10240 for mb in data.values())  # where the data steps stage and spill
    storage = {
        f["Properties"]["Environment"]["Variables"].get("MLOPS_FUNCTION"): f["Properties"].get("EphemeralStorage")
        for f in functions
        if "Environment" in f["Properties"]
    }
    assert all(storage[name] == {"Size": 10240} for name in data)


def _actions_on(raw: dict, role: str, table_logical_prefix: str) -> set[str]:
    """The actions ``role``'s statements allow on resources naming the table (cross-stack: its import)."""
    out: set[str] = set()
    for st in _statements(raw, role):
        if table_logical_prefix in json.dumps(st["Resource"]):
            out |= set(st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
    return out


def test_given_feature_sets_then_serving_may_only_get_and_ingestion_only_put_online_items(synth):
    features = "FeatureStoreFeaturesTable"
    assert _actions_on(synth.raw("serving"), "ServeRole", features) == {"dynamodb:BatchGetItem", "dynamodb:GetItem"}
    assert _actions_on(synth.raw("pipeline"), "Fningestfeatures", features) == {"dynamodb:PutItem"}
    # no other function of the pipeline touches the online table
    for st in _statements(synth.raw("pipeline")):
        if features in json.dumps(st["Resource"]):
            assert st["Action"] == "dynamodb:PutItem", st
    # uploads under the feature sets' source prefixes reach the ingestion function, retried into a dead-letter queue
    synth.template("pipeline").has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": Match.object_like(
                {"detail": {"bucket": Match.any_value(), "object": {"key": [{"prefix": "features/customers/"}]}}}
            ),
            "Targets": [Match.object_like({"DeadLetterConfig": Match.any_value(), "RetryPolicy": Match.any_value()})],
        },
    )


def test_given_a_feature_set_then_the_monitor_alarms_on_its_age_and_its_skew_and_reads_only_its_statistics(synth):
    monitoring = synth.template("monitoring")
    # stale: the age the monitor publishes past the set's max_staleness_hours (24 h); no datapoint keeps the state
    monitoring.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "FeatureAgeHours",
            "Namespace": "ServerlessMLOps",
            "Dimensions": [{"Name": "FeatureSet", "Value": "customers"}],
            "Statistic": "Maximum",
            "Period": 3600,
            "EvaluationPeriods": 1,
            "Threshold": 24,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "ignore",
            "AlarmActions": [Match.any_value()],
        },
    )
    # skew: a served feature past its drift threshold (score above 1); a window without lookups is not breaching
    monitoring.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "FeatureSkewScore",
            "Dimensions": [{"Name": "FeatureSet", "Value": "customers"}],
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [Match.any_value()],
        },
    )
    # one alarm per concern: the ingestion's rows-ingested alarm is gone (the age covers no upload, and old rows)
    alarms = [*resources_of_type(synth.raw("pipeline"), "AWS::CloudWatch::Alarm").values()]
    assert not [a for a in alarms if a["Properties"].get("MetricName") == "FeatureRowsIngested"]
    # the monitor reads the set's statistics document, and nothing else of the feature store
    paths = [
        part
        for st in _statements(synth.raw("monitoring"), "MonitorRole")
        for part in re.findall(r'"(/features/[^"]*)"', json.dumps(st["Resource"]))
    ]
    assert paths and set(paths) == {"/features/customers/_statistics/latest.json"}, paths
    assert not [st for st in _statements(synth.raw("monitoring")) if "FeatureStoreFeaturesTable" in json.dumps(st)]


def test_given_prod_without_feature_sets_then_it_has_no_feature_store(prod_synth):
    assert not [k for k in resources_of_type(prod_synth.raw("storage"), "AWS::DynamoDB::GlobalTable") if "Feature" in k]
    assert "ingest_features" not in json.dumps(prod_synth.raw("pipeline"))


def test_given_training_past_one_lambda_then_a_cluster_an_image_task_and_run_task_sync_with_least_privilege(synth):
    """#30: the refit's ECS Fargate task — a cluster with both capacity providers, a Fargate task definition whose
    image is the app's Docker image asset, two runTask.sync states (on demand, Spot) sized from the run's plan — and
    the state machine may run that task definition only, pass its two roles only, and manage the one EventBridge
    rule Step Functions needs for ``.sync``."""
    raw = synth.raw("pipeline")
    (cluster_id,) = resources_of_type(raw, "AWS::ECS::Cluster")
    (association,) = resources_of_type(raw, "AWS::ECS::ClusterCapacityProviderAssociations").values()
    assert sorted(association["Properties"]["CapacityProviders"]) == ["FARGATE", "FARGATE_SPOT"]
    ((task_id, task),) = resources_of_type(raw, "AWS::ECS::TaskDefinition").items()
    props = task["Properties"]
    assert props["RequiresCompatibilities"] == ["FARGATE"] and props["NetworkMode"] == "awsvpc"
    (container,) = props["ContainerDefinitions"]
    assert "cdk-hnb659fds-container-assets" in json.dumps(container["Image"])  # the DockerImageAsset, pushed on deploy
    roles = sorted([props["TaskRoleArn"]["Fn::GetAtt"][0], props["ExecutionRoleArn"]["Fn::GetAtt"][0]])

    states = walk_states(state_machine_definition(raw))
    sync = {n: s for n, s in states.items() if str(s.get("Resource", "")).endswith(":states:::ecs:runTask.sync")}
    assert sorted(sync) == ["TrainOnFargate", "TrainOnFargateSpot"]
    for state in sync.values():
        params = state["Parameters"]
        assert params["Cluster"] == f"<{cluster_id}.Arn>" and params["TaskDefinition"] == props["Family"]
        assert params["Overrides"]["Cpu.$"] == "$.plan.fargate.cpu"
        assert params["Overrides"]["Memory.$"] == "$.plan.fargate.memory"
        assert state["TimeoutSecondsPath"] == "$.plan.fargate.timeout_s" and state["Catch"]
    assert [s["Parameters"]["CapacityProviderStrategy"][0]["CapacityProvider"] for s in sync.values()] == [
        "FARGATE",
        "FARGATE_SPOT",
    ]

    statements = [
        s
        for policy in resources_of_type(raw, "AWS::IAM::Policy").values()
        if any("TrainingStateMachineRole" in str(r) for r in policy["Properties"]["Roles"])
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]

    def granted(action: str) -> list:
        return [
            s["Resource"]
            for s in statements
            if action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        ]

    (run_task,) = granted("ecs:RunTask")
    assert f'"Ref": "{task_id}"' in json.dumps(run_task)  # the ARN made of the task definition's own
    assert run_task["Fn::Join"][1][-1] == ":*"  # the task definition's family, any revision: nothing else
    (pass_role,) = granted("iam:PassRole")
    assert sorted(r["Fn::GetAtt"][0] for r in pass_role) == roles
    (rule,) = granted("events:PutRule")
    assert json.dumps(rule).endswith(':rule/StepFunctionsGetEventsForECSTaskRule"]]}')
    assert granted("events:PutTargets") == [rule] and granted("events:DescribeRule") == [rule]
