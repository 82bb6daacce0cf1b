"""The role the delivery pipeline's smoke test assumes in an environment it has just deployed (E4).

It may do exactly what ``mlops smoke --target aws`` does and nothing more: read the stacks' outputs and the model
catalog, upload one batch under each model's data prefix, follow the run it starts (runs and models tables, the
state machine's executions), and call ``GET /health`` and ``POST /models/*/predict``. Only the delivery
pipeline's smoke role (named, in the delivery account) may assume it.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_stepfunctions as sfn

from constructs import Construct
from mlops.core.config import ModelSet
from mlops.core.constants import STACK_SUFFIXES
from mlops.infra.constructs.metadata_tables import MetadataTables

SMOKE_PIPELINE_ROLE = "Mlops-delivery-smoke"  # the delivery pipeline's CodeBuild role for its smoke steps


def smoke_tester_role_name(stack_prefix: str) -> str:
    return f"{stack_prefix}-smoke-tester"


class SmokeTester(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stack_prefix: str,
        delivery_account: str | None,
        models: ModelSet,
        landing: s3.IBucket,
        tables: MetadataTables,
        parameters: list[ssm.IStringParameter],
        state_machine: sfn.IStateMachine,
        api: apigw.RestApi,
        api_key: apigw.IApiKey | None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        account = delivery_account or Aws.ACCOUNT_ID
        pipeline_role = f"arn:{Aws.PARTITION}:iam::{account}:role/{SMOKE_PIPELINE_ROLE}"
        self.role = iam.Role(
            self,
            "Role",
            role_name=smoke_tester_role_name(stack_prefix),
            description="serverless-mlops: the delivery pipeline's smoke test in this environment",
            assumed_by=iam.AccountPrincipal(account).with_conditions(
                {"ArnEquals": {"aws:PrincipalArn": pipeline_role}}
            ),
        )
        role = self.role
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudformation:DescribeStacks"],
                resources=[
                    stack.format_arn(service="cloudformation", resource="stack", resource_name=f"{stack_prefix}-{s}/*")
                    for s in STACK_SUFFIXES
                ],
            )
        )
        for parameter in parameters:
            parameter.grant_read(role)
        for config in models:
            if config.data.bucket is None:  # a model reading another bucket is smoke-tested with --batch by hand
                landing.grant_put(role, f"{config.data.prefix}*")
        tables.runs.grant_read_data(role)
        tables.models.grant_read_data(role)
        state_machine.grant_execution(role, "states:DescribeExecution")
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["execute-api:Invoke"],
                resources=[
                    api.arn_for_execute_api("GET", "/health", stage=api.deployment_stage.stage_name),
                    *(
                        api.arn_for_execute_api(
                            "POST", f"/models/{m.name}/predict", stage=api.deployment_stage.stage_name
                        )
                        for m in models
                    ),
                ],
            )
        )
        if api_key is not None:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["apigateway:GET"],
                    resources=[
                        stack.format_arn(service="apigateway", account="", resource=f"/apikeys/{api_key.key_id}")
                    ],
                )
            )
        self.role_arn_output = CfnOutput(stack, "SmokeTesterRoleArn", value=role.role_arn)
