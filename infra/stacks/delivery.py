"""Level-2 delivery (E4): a CDK Pipelines stack that ships the system itself.

source (a repository connection) → the README's test command and the synthesis (cdk-nag, cfn-lint, layers checked
under the runtime's Python) → deploy staging → the smoke test against staging → manual approval → deploy prod →
the same smoke test. The pipeline updates itself first when its own definition changes. Synthesized with
``-c env=delivery``, and only once ``cdk.json`` names a connection (``delivery.connection_arn``).
"""

from __future__ import annotations

from aws_cdk import App, Aws, Duration, Environment, Stack, Stage, Tags, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam

from constructs import Construct
from mlops.infra import nag
from mlops.infra.constructs.smoke_tester import SMOKE_PIPELINE_ROLE, SmokeTester, smoke_tester_role_name
from mlops.infra.settings import DeliverySettings, EnvironmentSettings, settings_from_context

# What every CodeBuild step runs on: the runtime's Python, and Node 20 — the newest the STANDARD_7_0 image lists
# as a runtime version; the README and GitHub CI ask for Node 22, which the pinned CDK CLI supports (moving
# here needs a newer image, to be tried against a real CodeBuild).
RUNTIMES = {"phases": {"install": {"runtime-versions": {"python": "3.12", "nodejs": "20"}}}}
# The same three scripts in this repository and in a project `mlops init` made (its scripts/ folder), so a change to
# a project's components reaches staging, its smoke test, the approval and prod exactly as platform code does.
SYNTH_COMMANDS = [
    "./scripts/test",  # here: ruff, mypy, the whole suite; in a project: its tests, config and component checks
    "./scripts/synth delivery",  # the real layers (the project's components in the code layer), cdk-nag, cfn-lint
    "./scripts/smoke",  # the smoke test against a fresh offline emulator, as CI runs it
]


class EnvironmentStage(Stage):
    """One environment's five stacks (their own names: ``Mlops-<env>-*``) plus the smoke tester's role."""

    def __init__(self, scope: Construct, settings: EnvironmentSettings, delivery_account: str | None) -> None:
        super().__init__(
            scope, settings.stack_prefix, env=Environment(account=settings.account, region=settings.region)
        )
        from mlops.infra.environment import build_environment

        self.settings = settings
        stacks = build_environment(self, settings, smoke_tester_for=delivery_account or "")
        tester = stacks["smoke_tester"]
        assert isinstance(tester, SmokeTester)
        self.smoke_tester = tester
        for stack in stacks.values():
            if isinstance(stack, Stack):
                Tags.of(stack).add("project", "serverless-mlops")
                Tags.of(stack).add("environment", settings.name)
                nag.acknowledge_grant_wildcards(stack)


class DeliveryStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, delivery: DeliverySettings, stages: list[EnvironmentSettings]
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            stack_name=delivery.stack_name,
            env=Environment(account=delivery.account, region=delivery.region),
        )
        source = pipelines.CodePipelineSource.connection(
            delivery.repository, delivery.branch, connection_arn=delivery.connection_arn
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name="serverless-mlops",
            pipeline_type=codepipeline.PipelineType.V2,
            cross_account_keys=True,  # encrypted artifacts, and stages may live in other accounts
            enable_key_rotation=True,
            docker_enabled_for_synth=False,
            synth=pipelines.ShellStep("TestAndSynth", input=source, commands=SYNTH_COMMANDS),
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(
                    build_image=codebuild.LinuxBuildImage.STANDARD_7_0,
                    compute_type=codebuild.ComputeType.MEDIUM,
                ),
                partial_build_spec=codebuild.BuildSpec.from_object(RUNTIMES),
                timeout=Duration.minutes(90),
            ),
        )
        # The smoke steps run as this role, which may only assume each environment's smoke tester role.
        self.smoke_role = iam.Role(
            self,
            "SmokeRole",
            role_name=SMOKE_PIPELINE_ROLE,
            description="serverless-mlops delivery: runs the smoke test as each environment's smoke tester",
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
        )
        self.smoke_role.add_to_policy(
            iam.PolicyStatement(
                actions=["sts:AssumeRole"],
                resources=[
                    Stack.of(self).format_arn(
                        service="iam",
                        region="",
                        account=s.account or Aws.ACCOUNT_ID,
                        resource="role",
                        resource_name=smoke_tester_role_name(s.stack_prefix),
                    )
                    for s in stages
                ],
            )
        )
        self.stages: list[EnvironmentStage] = []
        for i, settings in enumerate(stages):
            stage = EnvironmentStage(scope, settings, delivery.account)
            pre: list[pipelines.Step] = []
            if i > 0:
                pre.append(
                    pipelines.ManualApprovalStep(
                        f"Approve-{settings.name}",
                        comment=f"{stages[i - 1].name} is deployed and passed its smoke test: deploy {settings.name}?",
                    )
                )
            self.pipeline.add_stage(stage, pre=pre, post=[self._smoke(settings, stage, source)])
            self.stages.append(stage)
        self.pipeline.build_pipeline()
        nag.acknowledge_delivery(self)
        # CDK Pipelines writes its deploy actions' role ARNs with Fn::Join; cfn-lint's E3703 prefers Fn::Sub, a
        # style preference about generated code (CloudFormation accepts both), so it is off for this template only.
        self.template_options.metadata = {"cfn-lint": {"config": {"ignore_checks": ["E3703"]}}}

    def _smoke(
        self, settings: EnvironmentSettings, stage: EnvironmentStage, source: pipelines.IFileSetProducer
    ) -> pipelines.Step:
        return pipelines.CodeBuildStep(
            f"Smoke-{settings.name}",
            input=source,
            role=self.smoke_role,
            env_from_cfn_outputs={"SMOKE_ROLE_ARN": stage.smoke_tester.role_arn_output},
            commands=[
                'aws configure set profile.smoke.role_arn "$SMOKE_ROLE_ARN"',
                "aws configure set profile.smoke.credential_source EcsContainer",
                f"AWS_PROFILE=smoke ./scripts/smoke --target aws --env {settings.name}",
            ],
            timeout=Duration.minutes(30),
        )


def build_delivery(app: App, delivery: DeliverySettings) -> DeliveryStack:
    stages = [settings_from_context(app.node.try_get_context, name) for name in delivery.stages]
    stack = DeliveryStack(app, delivery.stack_name, delivery=delivery, stages=stages)
    Tags.of(stack).add("project", "serverless-mlops")
    nag.apply(app)
    return stack
