"""cdk-nag 3: AwsSolutions checks on the app; each acknowledged finding carries its reason."""

from __future__ import annotations

import json
import re

import jsii
from aws_cdk import Acknowledgment, App, Stack, Validations
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks

from constructs import IConstruct, IValidation

REASONS = {
    "AwsSolutions-IAM4": (
        "Only CDK's own helper functions (bucket notifications, auto-delete objects) use "
        "AWSLambdaBasicExecutionRole; this app's functions have roles that write to their own log group only."
    ),
    "AwsSolutions-IAM5": (
        "Wildcards come only from CDK grants scoped to one resource: object keys under one prefix of one "
        "bucket (bucket/runs/*, bucket/models/*, …), versions of one function (function:*), executions of one "
        "state machine (execution:<name>:*; a Distributed Map's child executions, execution:<name>/*:*, "
        "which its role describes, stops and redrives), the streams of a function's own log group, X-Ray segments "
        "(which accept no resource), cloudwatch:PutMetricData (no resource-level permissions; the monitor's grant "
        "is conditioned on the app's metric namespace), the state machine's log delivery (CloudWatch Logs "
        "requires *), ECR's GetAuthorizationToken for the training task's image (no resource-level permission), "
        "and ecs:DescribeTasks/StopTask of the runTask.sync integration (the task's ARN exists only once it runs; "
        "RunTask is granted on the revisions of the one task definition, family:*). "
        "Action wildcards are CDK's grant groups (s3:GetObject*, s3:List*, dynamodb:Get*, …), each checked "
        "against an allow-list at synthesis."
    ),
    "AwsSolutions-L1": (
        "python3.12 is pinned deliberately: the layers are built and byte-compiled for it and measured "
        "against the 250 MB limit; environments can select 3.13 in cdk.json."
    ),
    "AwsSolutions-S1": "This is the access-log bucket itself; logging it to itself would loop.",
    "AwsSolutions-APIG3": (
        "WAF is an account-level choice with a per-request cost; stage throttling (and the usage plan with "
        "api_key auth) bounds abuse. Attach a WebACL to the stage for a public-facing API."
    ),
    "AwsSolutions-COG4": "Callers authenticate with IAM (SigV4) or an API key, chosen per environment; not Cognito.",
    "AwsSolutions-SQS3": "This queue is the dead-letter queue of the trigger rules.",
}


API_KEY_REASON = (
    "This environment chose api_key auth: every method requires a key bound to a usage plan with "
    "throttling and a daily quota; switch api_auth to iam for SigV4-signed callers."
)


def apply(app: App) -> None:
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, finding: str, reason: str | None = None) -> None:
    """Acknowledge ``finding`` (a rule id, or ``Rule[FindingId]``) under ``scope``, with its recorded reason."""
    rule = finding.split("[", 1)[0]
    Validations.of(scope).acknowledge(Acknowledgment(id=finding, reason=reason or REASONS[rule]))


# What a grant may legitimately wildcard. Anything else fails synthesis instead of being acknowledged.
GRANT_ACTION_WILDCARDS = {
    "s3:GetObject*",
    "s3:GetBucket*",
    "s3:List*",
    "s3:DeleteObject*",
    "s3:Abort*",
    "s3:PutObject*",
    "dynamodb:BatchGet*",
    "dynamodb:Get*",
    "dynamodb:Query*",
    "dynamodb:Describe*",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
}
# Actions granted on the children of one resource (``<arn>:*``): versions of one function, executions of one
# state machine.
PARENT_SCOPED_ACTIONS = {
    "lambda:InvokeFunction",
    "states:DescribeExecution",
    # A Distributed Map's child executions are the machine's own (execution:<name>:*, execution:<name>/*:*).
    "states:StopExecution",
    "states:RedriveExecution",
    "ecs:RunTask",  # the revisions of the training task's one task definition (task-definition/<family>:*)
    "logs:CreateLogStream",  # the streams of one log group (log-group:<name>:*)
    "logs:PutLogEvents",
}
# Services whose actions accept no resource narrower than "*".
STAR_RESOURCE_ACTIONS = (
    "xray:",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "cloudwatch:PutMetricData",  # conditioned on the app's namespace where granted
    "ecr:GetAuthorizationToken",  # the training task's execution role, to pull its image
    # ecs:runTask.sync: the task's ARN exists only once RunTask returns, so Step Functions' integration describes
    # and stops it on * (CDK's EcsRunTask grant); RunTask itself is granted on the one task definition.
    "ecs:DescribeTasks",
    "ecs:StopTask",
)


def flatten_cfn_reference(node: object) -> str:
    """cdk-nag's own flattening of a CloudFormation reference (utils/flatten-cfn-reference)."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return delimiter.join(flatten_cfn_reference(i) for i in items)
        if "Fn::Sub" in node:
            return flatten_cfn_reference(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{flatten_cfn_reference(resource)}.{flatten_cfn_reference(attribute)}>"
        if "Fn::ImportValue" in node:
            return flatten_cfn_reference(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{flatten_cfn_reference(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]


@jsii.implements(IValidation)
class _GrantWildcards:
    """Runs in CDK's validation phase, after cross-stack references have become Fn::ImportValue."""

    def __init__(self, stack: Stack, scope: IConstruct | None = None, reason: str | None = None) -> None:
        self._stack, self._scope, self._reason = stack, scope, reason

    def validate(self) -> list[str]:
        try:
            _acknowledge_grant_wildcards(self._stack, self._scope, self._reason)
        except ValueError as err:
            return [str(err)]
        return []


def acknowledge_grant_wildcards(stack: Stack) -> None:
    """Acknowledge, at synthesis, the IAM5 findings that come from CDK grants — each checked to be of a
    known safe kind; an unexpected wildcard fails synthesis instead."""
    stack.node.add_validation(_GrantWildcards(stack))


def acknowledge_generated_wildcards(scope: IConstruct, reason: str) -> None:
    """Acknowledge every IAM5 finding under ``scope`` — only for a library's generated roles whose wildcards
    ``reason`` accounts for (CDK Pipelines); our own grants go through :func:`acknowledge_grant_wildcards`."""
    stack = Stack.of(scope)
    stack.node.add_validation(_GrantWildcards(stack, scope, reason))


def _acknowledge_grant_wildcards(stack: Stack, scope: IConstruct | None = None, reason: str | None = None) -> list[str]:
    acknowledged = []
    for node in (scope or stack).node.find_all():
        if not isinstance(node, iam.CfnPolicy):
            continue
        document = stack.resolve(node.policy_document)
        for statement in document.get("Statement", []):
            if statement.get("Effect") != "Allow":
                continue
            actions = [str(a) for a in _as_list(statement.get("Action"))]
            for action in actions:
                if "*" in action:
                    if reason is None and action not in GRANT_ACTION_WILDCARDS:
                        raise ValueError(f"{node.node.path}: unexpected wildcard action {action}")
                    acknowledged.append(f"AwsSolutions-IAM5[Action::{action}]")
                    acknowledge(node, acknowledged[-1], reason)
            for resource in _as_list(statement.get("Resource")):
                flat = flatten_cfn_reference(resource)
                if "*" not in flat:
                    continue
                star_ok = flat == "*" and all(a.startswith(STAR_RESOURCE_ACTIONS) for a in actions)
                objects_ok = flat.endswith("/*") and all(a.startswith("s3:") for a in actions)
                versions_ok = flat.endswith(":*") and all(a in PARENT_SCOPED_ACTIONS for a in actions)
                # A stack's ARN ends in its generated id: stack/<one name>/* is that one stack.
                stack_ok = bool(re.search(r":stack/[^*/]+/\*$", flat)) and actions == ["cloudformation:DescribeStacks"]
                if reason is None and not (star_ok or objects_ok or versions_ok or stack_ok):
                    raise ValueError(f"{node.node.path}: unexpected wildcard resource {flat} for {actions}")
                acknowledged.append(f"AwsSolutions-IAM5[Resource::{flat}]")
                acknowledge(node, acknowledged[-1], reason)
    return acknowledged


DELIVERY_REASONS = {
    "AwsSolutions-S1": (
        "CDK Pipelines' artifact bucket holds only intermediate build artifacts (the source archive and the cloud "
        "assembly), rebuilt from the repository on every run; it is KMS-encrypted with a rotated key, blocks public "
        "access, and only the pipeline's own roles can read it."
    ),
    "AwsSolutions-IAM5": (
        "CDK Pipelines' generated grants: S3 and KMS action groups (s3:GetObject*, kms:GenerateDataKey*, …) on the "
        "pipeline's own artifact bucket and key; the log groups and report groups of its own CodeBuild projects "
        "(and, for the asset-publishing role, of the projects it starts: codebuild:StartBuild/BatchGetBuilds "
        "accept no narrower resource there); self-mutation's sts:AssumeRole on role/* conditioned on the CDK "
        "bootstrap roles' aws-cdk:bootstrap-role tag, with cloudformation:DescribeStacks and s3:ListBucket on * "
        "to find them."
    ),
}


def acknowledge_delivery(stack: Stack) -> None:
    """The delivery pipeline's findings (CDK Pipelines' own constructs), each with its reason; the environments
    it deploys are checked like any other (their stages apply the same rules)."""
    pipeline = stack.node.find_child("Pipeline")
    acknowledge(pipeline, "AwsSolutions-S1", DELIVERY_REASONS["AwsSolutions-S1"])
    acknowledge_generated_wildcards(pipeline, DELIVERY_REASONS["AwsSolutions-IAM5"])
    acknowledge_generated_wildcards(
        stack.node.find_child("SmokeRole"),
        "The smoke steps' CodeBuild grants from CDK Pipelines: the log groups and report groups of the two smoke "
        "projects (<project>:*, <project>-*). Its own permission is sts:AssumeRole on each environment's named "
        "smoke-tester role only.",
    )
