"""The delivery pipeline (E4), synthesized with a dummy repository connection: its stages in order, the tests and
synthesis before any deploy, the smoke test after each, the approval before prod, stage stacks identical to the
ones ``cdk deploy -c env=<name>`` makes, a smoke tester that can do only the smoke test; cdk-nag (during
synthesis) and cfn-lint clean."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlops.infra.app import main, make_app
from mlops.infra.constructs.smoke_tester import SMOKE_PIPELINE_ROLE
from mlops.infra.settings import delivery_from_context
from mlops.infra.stacks.delivery import build_delivery

CONNECTION = "arn:aws:codeconnections:us-east-1:123456789012:connection/00000000-0000-0000-0000-000000000000"
DELIVERY = {"connection_arn": CONNECTION, "repository": "example/serverless-mlops"}
CFN_LINT = str(Path(sys.executable).with_name("cfn-lint"))
FIVE = ("Storage", "Pipeline", "Triggers", "Serving", "Monitoring")


def synth(outdir: Path, context: dict[str, Any]) -> Path:
    app = make_app(context={"mlops:skip_layer_build": "true", **context}, outdir=str(outdir))
    if context.get("env") == "delivery":
        build_delivery(app, delivery_from_context(app.node.try_get_context))
    else:
        from mlops.infra.app import build
        from mlops.infra.settings import settings_from_context

        build(app, settings_from_context(app.node.try_get_context))
    app.synth()  # raises if cdk-nag reports an unacknowledged finding
    return outdir


def stage_templates(outdir: Path, env: str) -> dict[str, dict[str, Any]]:
    """The stage's templates by stack name (Mlops-<env>-Storage, …)."""
    assembly = outdir / f"assembly-Mlops-{env}"
    manifest = json.loads((assembly / "manifest.json").read_text())
    out = {}
    for artifact in manifest["artifacts"].values():
        if artifact["type"] == "aws:cloudformation:stack":
            name = artifact["properties"].get("stackName")
            out[name] = json.loads((assembly / artifact["properties"]["templateFile"]).read_text())
    return out


@pytest.fixture(scope="module")
def delivery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth(tmp_path_factory.mktemp("cdk.out.delivery"), {"env": "delivery", "delivery": DELIVERY})


@pytest.fixture(scope="module")
def pipeline(delivery: Path) -> dict[str, Any]:
    template = json.loads((delivery / "Mlops-delivery.template.json").read_text())
    (resource,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"]
    return {"template": template, "pipeline": resource["Properties"]}


def path_free(resource: dict[str, Any]) -> str:
    return re.sub(r"AllowEventRule[A-Za-z0-9]+", "AllowEventRule…", json.dumps(resource, sort_keys=True))


def actions(stage: dict[str, Any]) -> list[tuple[int, str, str]]:
    return sorted((a["RunOrder"], a["Name"], a["ActionTypeId"]["Provider"]) for a in stage["Actions"])


def buildspec(template: dict[str, Any], action: dict[str, Any]) -> str:
    project = action["Configuration"]["ProjectName"]["Ref"]
    return str(template["Resources"][project]["Properties"]["Source"]["BuildSpec"])


def find_action(pipeline: dict[str, Any], stage: str, name: str) -> dict[str, Any]:
    (st,) = [s for s in pipeline["pipeline"]["Stages"] if s["Name"] == stage]
    (action,) = [a for a in st["Actions"] if a["Name"] == name]
    return action


def test_given_a_connection_when_synthesized_then_the_stages_run_tests_then_staging_smoke_approval_prod_smoke(
    pipeline,
):
    stages = pipeline["pipeline"]["Stages"]
    assert [s["Name"] for s in stages] == ["Source", "Build", "UpdatePipeline", "Assets", "Mlops-staging", "Mlops-prod"]
    source = stages[0]["Actions"][0]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["ConnectionArn"] == CONNECTION
    assert source["Configuration"]["FullRepositoryId"] == "example/serverless-mlops"
    assert source["Configuration"]["BranchName"] == "main"

    for env, stage in (("staging", stages[4]), ("prod", stages[5])):
        order = actions(stage)
        deploys = [(o, n) for o, n, p in order if p == "CloudFormation"]
        # Every one of the five stacks is prepared and deployed, in dependency order (storage first).
        assert {n.split(".")[0] for _, n in deploys} == set(FIVE)
        assert deploys[0][1] == "Storage.Prepare"
        last_deploy = max(o for o, _ in deploys)
        smoke = [(o, n) for o, n, p in order if n == f"Smoke-{env}"]
        assert smoke and smoke[0][0] > last_deploy, f"{env}: the smoke test runs after every deploy: {order}"
        approvals = [(o, n) for o, n, p in order if p == "Manual"]
        if env == "staging":
            assert approvals == []
        else:
            assert approvals == [(1, "Approve-prod")], "prod waits for a person before anything deploys"
            assert min(o for o, _ in deploys) > 1


def test_given_the_build_step_then_it_runs_the_readme_test_command_the_synthesis_and_the_smoke_offline(pipeline):
    spec = buildspec(pipeline["template"], find_action(pipeline, "Build", "TestAndSynth"))
    commands = json.loads(spec)["phases"]["build"]["commands"]
    assert commands == ["./scripts/test", "./scripts/synth delivery", "./scripts/smoke"]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "./scripts/test" in readme  # the README's test command, the same one CI and the pipeline run
    assert json.loads(spec)["phases"]["install"]["runtime-versions"] == {"python": "3.12", "nodejs": "20"}


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_given_a_smoke_step_then_it_assumes_the_stage_smoke_tester_and_runs_the_same_script(pipeline, env):
    action = find_action(pipeline, f"Mlops-{env}", f"Smoke-{env}")
    spec = json.loads(buildspec(pipeline["template"], action))
    commands = spec["phases"]["build"]["commands"]
    assert commands[-1] == f"AWS_PROFILE=smoke ./scripts/smoke --target aws --env {env}"
    assert "credential_source EcsContainer" in commands[1]
    # The role ARN comes from the stage's own stack output, after that stack is deployed.
    env_vars = json.loads(action["Configuration"]["EnvironmentVariables"])
    (role_var,) = [v for v in env_vars if v["name"] == "SMOKE_ROLE_ARN"]
    assert role_var["value"].startswith("#{") and "SmokeTesterRoleArn" in role_var["value"]


def test_given_the_smoke_role_then_it_may_only_assume_the_named_smoke_testers(pipeline):
    resources = pipeline["template"]["Resources"]
    (role,) = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("RoleName") == SMOKE_PIPELINE_ROLE
    ]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "codebuild.amazonaws.com"
    }
    statements = [
        s
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and "SmokeRole" in json.dumps(r["Properties"]["Roles"])
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    assume = [s for s in statements if s["Action"] == "sts:AssumeRole"]
    assert len(assume) == 1
    targets = json.dumps(assume[0]["Resource"])
    assert "Mlops-staging-smoke-tester" in targets and "Mlops-prod-smoke-tester" in targets
    assert '"*"' not in targets


def test_given_a_stage_then_its_stacks_are_the_ones_cdk_deploy_makes_plus_only_the_smoke_tester(
    delivery, tmp_path_factory
):
    direct = synth(tmp_path_factory.mktemp("cdk.out.staging"), {"env": "staging"})
    staged = stage_templates(delivery, "staging")
    assert sorted(staged) == sorted(f"Mlops-staging-{s}" for s in FIVE)
    for suffix in FIVE:
        name = f"Mlops-staging-{suffix}"
        ours = json.loads((direct / f"{name}.template.json").read_text())["Resources"]
        theirs = staged[name]["Resources"]
        # CDK names the invoke permissions of an EventBridge rule or an API method (and the dead-letter queue's
        # statement ids) after construct paths, which inside a stage include the stage: moving an environment from
        # `cdk deploy` to the pipeline replaces those permissions (CloudFormation creates the new one before
        # deleting the old: no gap) and renames the statement ids. Nothing else moves — the API key's usage-plan
        # key, which would collide with itself, is pinned (infra/logical_ids.py).
        renamed = {k for k in set(ours) ^ set(theirs) if "AllowEventRule" in k or "ApiPermission" in k}
        assert all(({**ours, **theirs})[k]["Type"] == "AWS::Lambda::Permission" for k in renamed)
        assert len(renamed & set(ours)) == len(renamed & set(theirs))
        ours = {k: v for k, v in ours.items() if k not in renamed}
        theirs = {k: v for k, v in theirs.items() if k not in renamed}
        extra = set(theirs) - set(ours)
        assert set(ours) <= set(theirs), f"{name}: the stage lacks {set(ours) - set(theirs)}"
        if suffix == "Monitoring":
            assert extra and all(k.startswith("SmokeTester") for k in extra), extra
        else:
            assert not extra, f"{name}: {extra}"
        for key, resource in ours.items():
            if resource["Type"] in ("AWS::Lambda::Function", "AWS::Lambda::LayerVersion"):
                continue  # asset locations differ between assemblies; the code is the same
            assert path_free(theirs[key]) == path_free(resource), (
                f"{name}/{key} differs between the stage and cdk deploy"
            )


def test_given_the_smoke_tester_then_it_trusts_only_the_pipeline_role_and_reaches_only_what_smoke_does(delivery):
    monitoring = stage_templates(delivery, "staging")["Mlops-staging-Monitoring"]["Resources"]
    (role,) = [r for k, r in monitoring.items() if k.startswith("SmokeTesterRole") and r["Type"] == "AWS::IAM::Role"]
    assert role["Properties"]["RoleName"] == "Mlops-staging-smoke-tester"
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert SMOKE_PIPELINE_ROLE in json.dumps(trust["Condition"]["ArnEquals"]["aws:PrincipalArn"])
    (policy,) = [
        r for k, r in monitoring.items() if k.startswith("SmokeTesterRole") and r["Type"] == "AWS::IAM::Policy"
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    allowed = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not {a for a in allowed if a.split(":")[0] in {"iam", "lambda", "dynamodb"} and "Put" in a}
    assert not any(a.startswith(("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")) for a in allowed)
    assert "states:StartExecution" not in allowed  # a run starts from the upload, through the trigger
    invoke = json.dumps([s["Resource"] for s in statements if s["Action"] == "execute-api:Invoke"])
    assert "/GET/health" in invoke
    assert "/POST/models/breast-cancer/predict" in invoke and "/POST/models/diabetes/predict" in invoke
    assert "/feedback" not in invoke
    puts = json.dumps([s["Resource"] for s in statements if "s3:PutObject" in s["Action"]])
    assert "breast-cancer/*" in puts and "diabetes/*" in puts


def test_given_the_templates_then_cfn_lint_reports_no_errors(delivery):
    templates = [str(delivery / "Mlops-delivery.template.json"), *map(str, delivery.glob("assembly-*/*.template.json"))]
    assert len(templates) == 11
    proc = subprocess.run([CFN_LINT, "--non-zero-exit-code", "error", *templates], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("delivery_block", "message"),
    [
        (None, "delivery.connection_arn is not set"),
        ({"repository": "example/serverless-mlops"}, "delivery.connection_arn is not set"),
        ({**DELIVERY, "repository": "not a repo"}, "delivery: repository"),
        ({**DELIVERY, "connection_arn": "arn:aws:s3:::bucket"}, "delivery: connection_arn"),
        ({**DELIVERY, "stages": ["staging", "qa"]}, "delivery.stages: unknown environment(s) ['qa']"),
    ],
)
def test_given_no_or_a_bad_connection_when_env_is_delivery_then_synthesis_fails_naming_the_field(
    delivery_block, message, tmp_path
):
    context = {"env": "delivery", "mlops:skip_layer_build": "true"}
    if delivery_block is not None:
        context["delivery"] = delivery_block
    with pytest.raises(ValueError, match=re.escape(message)):
        main(context, str(tmp_path))


def test_given_a_project_made_by_mlops_init_then_the_pipelines_build_stage_runs_its_tests_and_component_checks():
    """Level 2 for components: the delivery pipeline's build stage runs the project's own scripts — its tests, its
    config check and `mlops component check --all` before staging, then its synth and smoke test."""
    from mlops.infra.stacks.delivery import SYNTH_COMMANDS
    from mlops.tools.samples import STARTER

    for command in SYNTH_COMMANDS:
        script = STARTER / command.split()[0]
        assert script.is_file() and script.stat().st_mode & 0o111, command
    checks = (STARTER / "scripts" / "test").read_text()
    assert "pytest" in checks and "mlops config check" in checks and "mlops component check --all" in checks
    assert "cdk synth" in (STARTER / "scripts" / "synth").read_text()
