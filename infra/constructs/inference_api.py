"""C1/C5: the prediction API — API Gateway REST in front of the serve function's ``live`` alias."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from constructs import Construct
from mlops.infra import nag
from mlops.infra.logical_ids import logical_id_within, stage_free_unique_id

ROUTES = (("POST", "predict"), ("POST", "feedback"), ("GET", "model"), ("GET", "health"), ("GET", "openapi.json"))
MODEL_ROUTES = (("GET", ""), ("POST", "predict"), ("POST", "feedback"))  # under /models/<name>


@dataclass(frozen=True)
class ModelRoute:
    """A model's routes and throttle: literal resources (``/models/<name>/…``), so the stage throttles each
    model on its own."""

    name: str
    rate_limit: float
    burst_limit: int

    def method_paths(self) -> list[str]:
        return [f"/models/{self.name}{'/' + p if p else ''}/{m}" for m, p in MODEL_ROUTES]


def bad_request_body(max_rows: int) -> dict[str, object]:
    """API Gateway's answer to a body that is not JSON or does not fit the request model: what a body must be."""
    return {
        "message": "Invalid request body: it must be JSON, an object with one field, records (predict) or labels "
        f"(feedback): a list of 1 to {max_rows} JSON objects; GET /openapi.json describes each model's records",
        "errors": [],
    }


class InferenceApi(Construct):
    """REST API with IAM or API-key auth, stage throttling, JSON access logs, X-Ray and a request validator."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alias: lambda_.IFunction,
        auth: Literal["iam", "api_key"],
        rate_limit: float,
        burst_limit: int,
        max_rows: int,
        quota_per_day: int,
        log_retention: logs.RetentionDays,
        models: list[ModelRoute],
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            description="serverless-mlops predictions from the champion model",
            # The name is the ApiName dimension of its CloudWatch metrics: one per environment, so the
            # alarms and the dashboard of dev and prod in one account never read each other's traffic.
            rest_api_name=f"{Stack.of(self).stack_name}-predictions",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # API Gateway's CloudWatch role is one account-wide setting: destroying one environment must not
            # take it from the others, so it is retained.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name="live",
                tracing_enabled=True,
                # Detailed (per method) metrics off: the alarms and the dashboard read the API's own (ApiName), which
                # API Gateway publishes anyway; per-method ones bill as custom metrics, ~7 per route with traffic.
                metrics_enabled=False,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                throttling_rate_limit=rate_limit,
                throttling_burst_limit=burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                variables={"alias": "live"},
                # Per model: its routes have their own rate and burst, so a flood of one model's requests is
                # answered 429 at its limit while the others keep theirs.
                method_options={
                    path: apigw.MethodDeploymentOptions(
                        throttling_rate_limit=m.rate_limit, throttling_burst_limit=m.burst_limit
                    )
                    for m in models
                    for path in m.method_paths()
                },
            ),
        )
        validator = self.api.add_request_validator(
            "Params",
            validate_request_parameters=True,
            validate_request_body=True,
        )
        # The body's shape, checked before Lambda is invoked (and paid for): an object with 1..max_rows
        # records (or labels). Field names and values are the model's own and are checked in the function,
        # which names each bad field. The local API Gateway applies these same models, read from the template.
        bodies = {
            path: self._rows_model(title, key, max_rows, f"POST /{path} body")
            for path, title, key in (
                ("predict", "PredictRequest", "records"),
                ("feedback", "FeedbackRequest", "labels"),
            )
        }
        # A body that fails its model gets what a request must be, not AWS's bare "Invalid request body". Static
        # text: $context.error.validationErrorString is substituted as is (no JSON escaping) and some of its
        # messages hold double quotes, which would break the JSON a client parses. The function, which sees the
        # bodies the gateway lets through, names each problem itself (also 400). The local gateway answers this.
        self.api.add_gateway_response(
            "BadRequestBody",
            type=apigw.ResponseType.BAD_REQUEST_BODY,
            status_code="400",
            templates={"application/json": json.dumps(bad_request_body(max_rows))},
        )
        # One invoke permission per method, for the deployed stage (no console test-invoke permissions).
        integration = apigw.LambdaIntegration(alias, proxy=True, allow_test_invoke=False)
        authorization = apigw.AuthorizationType.IAM if auth == "iam" else apigw.AuthorizationType.NONE

        def add(resource: apigw.IResource, method: str, path: str) -> None:
            resource.add_method(
                method,
                integration,
                authorization_type=authorization,
                api_key_required=auth == "api_key",
                request_validator=validator,
                request_models={"application/json": bodies[path]} if method == "POST" else None,
            )

        for method, path in ROUTES:
            add(self.api.root.add_resource(path), method, path)
        models_resource = self.api.root.add_resource("models")
        add(models_resource, "GET", "models")
        for m in models:
            model_resource = models_resource.add_resource(m.name)
            for method, path in MODEL_ROUTES:
                add(model_resource.add_resource(path) if path else model_resource, method, path)
        self.api_key: apigw.IApiKey | None = None
        if auth == "api_key":
            self.api_key = self.api.add_api_key("Key")
            plan = self.api.add_usage_plan(
                "Plan",
                throttle=apigw.ThrottleSettings(rate_limit=rate_limit, burst_limit=burst_limit),
                quota=apigw.QuotaSettings(limit=quota_per_day, period=apigw.Period.DAY),
            )
            # CDK names the usage-plan key after the key's path from the app; pinned, so that moving the stack into
            # the delivery pipeline's stage does not create a second key for the same plan (a conflict).
            plan.add_api_key(
                self.api_key,
                override_logical_id=logical_id_within(
                    plan, f"UsagePlanKeyResource:{stage_free_unique_id(self.api_key)}"
                ),
            )
            plan.add_api_stage(stage=self.api.deployment_stage)
            nag.acknowledge(self.api, "AwsSolutions-APIG4", nag.API_KEY_REASON)
            nag.acknowledge(self.api, "AwsSolutions-COG4", nag.API_KEY_REASON)
        else:
            nag.acknowledge(self.api, "AwsSolutions-COG4")
        nag.acknowledge(self.api, "AwsSolutions-APIG3")
        nag.acknowledge(
            self.api,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "API Gateway's account-level CloudWatch role needs exactly this AWS-managed policy to write "
            "execution logs.",
        )

    def _rows_model(self, title: str, key: str, max_rows: int, description: str) -> apigw.Model:
        """``{key: [object, …]}`` with 1..max_rows objects and nothing else."""
        return self.api.add_model(
            title,
            content_type="application/json",
            description=description,
            schema=apigw.JsonSchema(
                schema=apigw.JsonSchemaVersion.DRAFT4,
                title=title,
                type=apigw.JsonSchemaType.OBJECT,
                required=[key],
                additional_properties=False,
                properties={
                    key: apigw.JsonSchema(
                        type=apigw.JsonSchemaType.ARRAY,
                        min_items=1,
                        max_items=max_rows,
                        items=apigw.JsonSchema(type=apigw.JsonSchemaType.OBJECT),
                    )
                },
            ),
        )
