"""Offline AWS: moto as a local endpoint, provisioned from the CDK app's synthesized templates.

* Resources come from the templates: buckets (versioning, EventBridge notifications), tables (key
  schemas), the SNS topic, every Lambda function with its rendered environment, the EventBridge rules
  and targets, the project config parameter, and **the state machine definition as synthesized** — there
  is no second copy of the control flow.
* Lambda invocations — by the state machine, by EventBridge targets, by ``aws lambda invoke`` — are
  served in-process by the real handlers (see :mod:`mlops.local.seams`).
* Events are routed as in AWS: an object put into the landing bucket reaches the trigger as an
  EventBridge "Object Created" event through the deployed rule's pattern; finished executions emit
  "Step Functions Execution Status Change"; scheduled rules fire on :meth:`LocalCloud.tick`.
* CloudWatch as AWS runs it (:mod:`mlops.local.cloudwatch`): function output goes to its log group and
  through the subscription filters; API Gateway and Step Functions publish their metrics; alarms are
  evaluated (on every tick, and every few seconds in the background) and their state changes reach
  EventBridge rules and SNS. ``tick(advance_s=…)`` moves the emulated clock forward, so "two consecutive
  hourly windows" take two ticks, not two hours.
* One clock (:mod:`mlops.core.clock`): the emulator process and every execution environment tell the time by the
  emulated clock (the offset travels with each invocation), so captures, monitor windows, cooldowns, leases
  and records agree. Alarms are evaluated at the clock the scheduled targets have caught up with: while a tick
  is firing its schedules, evaluation stays at the previous tick's time (AWS evaluates with a delay for the
  same reason: a period whose data has not arrived yet must not count as a missing one).
* Every AWS SDK or the AWS CLI can talk to it: ``aws --endpoint-url http://127.0.0.1:PORT s3 ls``.

State is held in memory by the process that runs the endpoint; ``.mlops/`` keeps the synthesized
template cache, ``local.json`` (how to reach the endpoint) and reports. Stopping the endpoint discards
the emulated AWS state; starting again provisions a fresh, empty account.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import socket
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from mlops.core import clock
from mlops.core.constants import ENV_FUNCTION, ENV_MAX_ROWS, ENV_MODEL_CACHE_SECONDS
from mlops.core.project import Project, ProjectNotFoundError
from mlops.local import seams
from mlops.local.assembly import state_dir, synthesize
from mlops.local.cloudwatch import AlarmEvaluator, LogRouter, MetricsBuffer
from mlops.local.lambda_runtime import reset_caches
from mlops.local.template import load_templates, render, resources_of_type

ACCOUNT = "123456789012"
REGION = "us-east-1"
LOCAL_FILE = "local.json"
_SUB = re.compile(r"\$\{([^}]+)\}")
TUNABLES = (ENV_MODEL_CACHE_SECONDS, ENV_MAX_ROWS)
STACKS = ("Storage", "Pipeline", "Triggers", "Serving", "Monitoring")
ALARM_EVALUATION_S = 5.0  # CloudWatch evaluates every minute; locally, often enough to watch it happen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Provisioned:
    """Physical names of what was created, by (stack, logical id), plus exports and outputs."""

    refs: dict[tuple[str, str], str] = field(default_factory=dict)
    arns: dict[tuple[str, str], str] = field(default_factory=dict)
    exports: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)


class LocalCloud:
    """The emulated account: start it, use it through boto3 at ``endpoint``, stop it."""

    def __init__(
        self,
        configs: Path | str | list[Path] | None = None,
        *,
        port: int = 0,
        env: str = "dev",
        host: str = "127.0.0.1",
        api_port: int = 0,
        isolated: bool = True,
        project: Project | None = None,
    ) -> None:
        self.env = env
        self.project = project or project_of(configs)
        self.config_paths = project_models(configs, env, self.project)
        self.host = host
        self.port = port or free_port()
        self.endpoint = f"http://{host}:{self.port}"
        self.p = Provisioned()
        self._server: Any = None
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()
        self._reported: set[str] = set()
        self.templates: dict[str, dict[str, Any]] = {}
        self.assembly: Path | None = None
        self.api_port = api_port
        self.api: Any = None
        self.isolated = isolated  # each function in execution environments of its own (worker processes)
        self._saved_environ: dict[str, str] | None = None
        self.clock_offset_s = 0.0  # the emulated clock runs this far ahead of the wall clock (tick(advance_s))
        self.metrics: MetricsBuffer | None = None
        self.alarms: AlarmEvaluator | None = None
        self.router: LogRouter | None = None
        self.alarm_changes: list[dict[str, Any]] = []
        self._last_fired: dict[str, datetime] = {}
        self._started_at = datetime.now(UTC)
        self._ticking = threading.Lock()  # one tick at a time in this process
        self._client_lock = threading.Lock()
        self._shared_session: boto3.session.Session | None = None

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> LocalCloud:
        from moto.server import ThreadedMotoServer

        self.assembly = synthesize(self.config_paths, self.env, project=self.project)
        clock_file(self.endpoint).unlink(missing_ok=True)  # a fresh account starts at the wall clock
        endpoint = self.endpoint
        clock.set_offset(lambda: read_clock_offset(endpoint))  # this process tells the time by the emulated clock
        self.templates = load_templates(self.assembly)
        self._saved_environ = dict(os.environ)  # given back at stop: nothing of this account outlives it
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "offline",
                "AWS_SECRET_ACCESS_KEY": "offline",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ENDPOINT_URL": self.endpoint,
                "MOTO_PORT": str(self.port),  # where moto's Step Functions engine sends its own SDK calls
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": os.environ.get("MLOPS_LOCAL_LOG_LEVEL", "WARNING"),
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        seams.execute_state_machines(True)
        seams.install(self)
        seams.quiet_logs()
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        seams.reset_backends()
        from mlops.local.apigw import LocalApi

        self.api = LocalApi(port=self.api_port, host=self.host).start()
        self.metrics = MetricsBuffer(self.client("cloudwatch"))
        self.router = LogRouter(self.client("logs"), seams.deliver, self.metrics)
        seams.route_logs(self.router)
        self.alarms = AlarmEvaluator(
            self.client("cloudwatch"),
            self.client("sns"),
            self.put_event,
            self.evaluation_time,
            exclusive=lambda: clock_lock(endpoint),
        )
        self.provision()
        self.api.publish_metrics(self.metrics, self._api_name())
        seams.start_environments(self.isolated, self.project.root)
        self.api.use_template(self.templates[self._stack("Serving")])
        reset_caches()
        from mlops.serving import api

        api.model_cache.cache_clear()
        self._started_at = self.now()
        self._stop.clear()
        self._watcher = threading.Thread(target=self._watch_executions, name="mlops-sfn-watcher", daemon=True)
        self._watcher.start()
        self.write_local_file()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._watcher:
            self._watcher.join(timeout=2)
        seams.drain()  # what is still in flight ends first (a liveness bound: seams.DRAIN_S)
        if self.metrics is not None:
            self.metrics.stop()
            self.metrics = None
        if self.api is not None:
            self.api.stop()
            self.api = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        seams.uninstall()
        seams.execute_state_machines(False)
        if self._saved_environ is not None:
            os.environ.clear()
            os.environ.update(self._saved_environ)
            self._saved_environ = None
        reset_caches()
        current = read_local_file()
        if current is not None and current.get("endpoint") == self.endpoint:
            (state_dir() / LOCAL_FILE).unlink(missing_ok=True)
        clock_file(self.endpoint).unlink(missing_ok=True)
        clock_file(self.endpoint).with_suffix(".lock").unlink(missing_ok=True)
        clock.set_offset(None)

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def session(self) -> boto3.session.Session:
        return boto3.session.Session(aws_access_key_id="offline", aws_secret_access_key="offline", region_name=REGION)

    def client(self, service: str) -> Any:
        """A client of the emulated account. They share one session, so each service's model is loaded once per
        emulator rather than per client (loading them was 3 of an emulator start's 10 seconds); a session is not
        safe to make clients from concurrently, so that is done one at a time (the clients themselves are)."""
        with self._client_lock:
            if self._shared_session is None:
                self._shared_session = self.session()
            return self._shared_session.client(service, endpoint_url=self.endpoint)  # type: ignore[call-overload]

    def write_local_file(self) -> Path:
        path = state_dir() / LOCAL_FILE
        write_json_atomically(
            path,
            json.dumps(
                {
                    "endpoint": self.endpoint,
                    "region": REGION,
                    "env": self.env,
                    "pid": os.getpid(),
                    "started_at": _iso_now(),
                    "models": [str(p) for p in self.config_paths],
                    "outputs": self.p.outputs,
                },
                indent=2,
            ),
        )
        return path

    # -- provisioning from the templates ---------------------------------------
    def _resolve(self, stack: str) -> Any:
        def resolve(node: dict[str, Any]) -> str:
            if "Ref" in node:
                ref = node["Ref"]
                pseudo = {
                    "AWS::AccountId": ACCOUNT,
                    "AWS::Region": REGION,
                    "AWS::Partition": "aws",
                    "AWS::URLSuffix": "amazonaws.com",
                    "AWS::StackName": stack,
                }
                if ref in pseudo:
                    return pseudo[ref]
                return self.p.refs[(stack, ref)]
            if "Fn::GetAtt" in node:
                logical, attr = node["Fn::GetAtt"]
                if attr == "Arn":
                    return self.p.arns[(stack, logical)]
                return self.p.refs[(stack, logical)]
            if "Fn::ImportValue" in node:
                return self.p.exports[node["Fn::ImportValue"]]
            raise KeyError(node)

        return resolve

    def _render(self, stack: str, value: Any) -> Any:
        resolve = self._resolve(stack)

        def sub(v: Any) -> Any:
            if isinstance(v, dict) and "Fn::Sub" in v and isinstance(v["Fn::Sub"], str):
                return _SUB.sub(lambda m: resolve({"Ref": m.group(1)}), v["Fn::Sub"])
            if isinstance(v, dict):
                return {k: sub(x) for k, x in v.items()}
            if isinstance(v, list):
                return [sub(x) for x in v]
            return v

        return render(sub(value), resolve)

    @staticmethod
    def _physical(stack: str, logical: str, limit: int, lower: bool = False) -> str:
        name = f"{stack}-{logical}"
        name = re.sub(r"[^A-Za-z0-9-]", "-", name)[:limit]
        return name.lower() if lower else name

    def _stack(self, suffix: str) -> str:
        return f"Mlops-{self.env}-{suffix}"

    # Resource kinds in the order they are created (what a later kind refers to exists by then), each by its own
    # method; a kind not listed is not emulated.
    PROVISIONERS = (
        ("AWS::S3::Bucket", "_bucket"),
        ("AWS::DynamoDB::GlobalTable", "_table"),
        ("AWS::SNS::Topic", "_topic"),
        ("AWS::SQS::Queue", "_queue"),
        ("Custom::S3BucketNotifications", "_bucket_notifications"),
        ("AWS::SSM::Parameter", "_parameter"),
        ("AWS::Logs::LogGroup", "_log_group"),
        ("AWS::Lambda::Function", "_function"),
        ("AWS::EC2::Subnet", "_network"),
        ("AWS::EC2::SecurityGroup", "_network"),
        ("AWS::ECS::Cluster", "_cluster"),
        ("AWS::ECS::TaskDefinition", "_task_definition"),
        ("AWS::Logs::SubscriptionFilter", "_subscription"),
        ("AWS::StepFunctions::StateMachine", "_state_machine"),
        ("AWS::CloudWatch::Alarm", "_alarm"),
        ("AWS::CloudWatch::Dashboard", "_dashboard"),
        ("AWS::Events::Rule", "_rule"),
    )

    def provision(self) -> None:
        """Create every emulated resource of every stack, in stack order, then the stacks' outputs."""
        self._clients: dict[str, Any] = {}
        self._role = self._c("iam").create_role(RoleName="mlops-local", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        for stack in [self._stack(x) for x in STACKS if self._stack(x) in self.templates]:
            template = self.templates[stack]
            for kind, method in self.PROVISIONERS:
                for logical, resource in resources_of_type(template, kind).items():
                    getattr(self, method)(stack, logical, resource)
            self._outputs(stack, template)
        self._share_environment()

    def _c(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.client(service)
        return self._clients[service]

    def _named(self, stack: str, logical: str, ref: str, arn: str | None = None) -> None:
        self.p.refs[(stack, logical)] = ref
        if arn is not None:
            self.p.arns[(stack, logical)] = arn

    def _bucket(self, stack: str, logical: str, res: dict[str, Any]) -> None:
        name = self._physical(stack, logical, 63, lower=True)
        self._c("s3").create_bucket(Bucket=name)
        if res["Properties"].get("VersioningConfiguration", {}).get("Status") == "Enabled":
            self._c("s3").put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        self._named(stack, logical, name, f"arn:aws:s3:::{name}")

    def _table(self, stack: str, logical: str, res: dict[str, Any]) -> None:
        props = res["Properties"]
        name = self._physical(stack, logical, 255)
        self._c("dynamodb").create_table(
            TableName=name,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode="PAY_PER_REQUEST",
        )
        self._named(stack, logical, name, f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}")

    def _topic(self, stack: str, logical: str, res: dict[str, Any]) -> None:
        arn = self._c("sns").create_topic(Name=self._physical(stack, logical, 256))["TopicArn"]
        self._named(stack, logical, arn, arn)

    def _queue(self, stack: str, logical: str, res: dict[str, Any]) -> None:
        url = self._c("sqs").create_queue(QueueName=self._physical(stack, logical, 80))["QueueUrl"]
        self._named(stack, logical, url, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{url.rsplit('/', 1)[-1]}")

    def _bucket_notifications(self, stack: str, logical: str, res: dict[str, Any]) -> None:
        props = res["Properties"]  # its ServiceToken (CDK's handler) is what we stand in for
        if "EventBridgeConfiguration" in props["NotificationConfiguration"]:
            bucket = self._render(stack, props["BucketName"])
            self._c("s3").put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
            seams.enable_eventbridge(ACCOUNT, bucket)

    def _parameter(self, stack: str, logical: str, res: dict[str, Any]) -> None:
        props = self._render(stack, res["Properties"])
        self._c("ssm").put_parameter(Name=props["Name"], Value=props["Value"], Type=props["Type"], Overwrite=True)
        self._named(stack, logical, props["Name"])

    def _log_group(self, stack: str, logical: str, res: dict[str, Any]) -> None:
        group = res["Properties"].get("LogGroupName") or f"/aws/mlops/{self._physical(stack, logical, 200)}"
        group = self._render(stack, group)
        self._c("logs").create_log_group(logGroupName=group)
        self._named(stack, logical, group, f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:*")

    def _function(self, stack: str, logical: str, res: dict[str, Any]) -> None:
        props = res["Properties"]
        env = self._render(stack, props.get("Environment", {}).get("Variables", {}))
        if ENV_FUNCTION not in env:
            return  # CDK's own helpers (e.g. the bucket-notifications handler) are not emulated
        name = self._physical(stack, logical, 64)
        arn = self._c("lambda").create_function(
            FunctionName=name,
            Runtime=props.get("Runtime", "python3.12"),
            Role=self._role,
            Handler=props.get("Handler", "handler.handler"),
            Code={"ZipFile": _stub_zip(env[ENV_FUNCTION])},
            Timeout=int(props.get("Timeout", 900)),
            MemorySize=int(props.get("MemorySize", 1024)),
            Environment={"Variables": env},
        )["FunctionArn"]
        self._named(stack, logical, name, arn)
        # A tunable set in the emulator's environment (the demo's short cache) wins over the template.
        env = {k: v for k, v in env.items() if not (k in TUNABLES and k in os.environ)}
        log_group = props.get("LoggingConfig", {}).get("LogGroup")
        seams.register_function(
            name,
            env[ENV_FUNCTION],
            env,
            int(props.get("Timeout", 900)),
            int(props.get("MemorySize", 128)),
            self._render(stack, log_group) if log_group else f"/aws/lambda/{name}",
        )

    def _network(self, stack: str, logical: str, res: dict[str, Any]) -> None:
        """A subnet or security group: named only (the training task runs as a local process, on no network)."""
        prefix = "subnet" if res["Type"] == "AWS::EC2::Subnet" else "sg"
        self._named(stack, logical, f"{prefix}-{hashlib.sha256(f'{stack}/{logical}'.encode()).hexdigest()[:17]}")

    def _cluster(self, stack: str, logical: str, res: dict[str, Any]) -> None:
        name = self._physical(stack, logical, 255)
        self._named(stack, logical, name, f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}")

    def _task_definition(self, stack: str, logical: str, res: dict[str, Any]) -> None:
        """A task definition the state machine runs with ``ecs:runTask.sync``: its one container's command,
        environment, memory and log group, for :func:`seams._run_ecs_task` to run it as a process."""
        props = res["Properties"]
        family = props.get("Family") or self._physical(stack, logical, 255)
        arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:1"
        (container,) = props["ContainerDefinitions"]
        options = self._render(stack, container.get("LogConfiguration", {}).get("Options", {}))
        seams.register_task_definition(
            seams.TaskDefinition(
                family=family,
                arn=arn,
                container=container["Name"],
                command=list(container["Command"]),
                env={e["Name"]: str(e["Value"]) for e in self._render(stack, container.get("Environment", []))},
                cpu=int(props["Cpu"]),
                memory_mb=int(props["Memory"]),
                log_group=options.get("awslogs-group", f"/ecs/{family}"),
                stream_prefix=options.get("awslogs-stream-prefix", family),
            )
        )
        self._named(stack, logical, arn, arn)

    def _subscription(self, stack: str, logical: str, res: dict[str, Any]) -> None:
        props = self._render(stack, res["Properties"])
        destination = str(props["DestinationArn"]).split(":function:")[-1].split(":")[0]
        assert self.router is not None
        self.router.subscribe(props["LogGroupName"], logical, props.get("FilterPattern", ""), destination)

    def _state_machine(self, stack: str, logical: str, res: dict[str, Any]) -> None:
        definition = self._render(stack, res["Properties"]["DefinitionString"])
        arn = self._c("stepfunctions").create_state_machine(
            name=self._physical(stack, logical, 80), definition=definition, roleArn=self._role
        )["stateMachineArn"]
        self._named(stack, logical, arn, arn)

    def _alarm(self, stack: str, logical: str, res: dict[str, Any]) -> None:
        props = self._render(stack, res["Properties"])
        name = self._physical(stack, logical, 255)
        self._c("cloudwatch").put_metric_alarm(AlarmName=name, **_alarm_arguments(props))
        self._named(stack, logical, name, f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}")

    def _dashboard(self, stack: str, logical: str, res: dict[str, Any]) -> None:
        name = self._physical(stack, logical, 255)
        try:
            body = self._render(stack, res["Properties"]["DashboardBody"])
            self._c("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=body)
        except (KeyError, ValueError, TypeError):
            return  # a widget on something not emulated
        self._named(stack, logical, name)

    def _rule(self, stack: str, logical: str, res: dict[str, Any]) -> None:
        props = self._render(stack, res["Properties"])
        name = self._physical(stack, logical, 64)
        kwargs: dict[str, Any] = {"Name": name, "State": props.get("State", "ENABLED")}
        if "EventPattern" in props:
            kwargs["EventPattern"] = json.dumps(props["EventPattern"])
        if "ScheduleExpression" in props:
            kwargs["ScheduleExpression"] = props["ScheduleExpression"]
        self._c("events").put_rule(**kwargs)
        targets = [  # Lambda and SNS targets are delivered by the seam; log groups by moto itself
            {k: t[k] for k in ("Id", "Arn", "Input", "InputPath", "InputTransformer") if k in t}
            for t in props.get("Targets", [])
            if any(kind in t["Arn"] for kind in (":lambda:", ":logs:", ":sns:"))
        ]
        if targets:
            self._c("events").put_targets(Rule=name, Targets=targets)
        self._named(stack, logical, name)

    def _outputs(self, stack: str, template: dict[str, Any]) -> None:
        """The stack's outputs, resolved; registered in the emulated CloudFormation for the CLI to discover."""
        outputs = {"ApiUrl": self.api.url} if stack == self._stack("Serving") and self.api else {}
        for key, out in template.get("Outputs", {}).items():
            try:
                value = str(self._render(stack, out["Value"]))
            except KeyError:
                continue  # an output about something not emulated
            outputs.setdefault(key, value)
            if "Export" in out:
                self.p.exports[out["Export"]["Name"]] = value
        self.p.outputs[stack] = outputs
        # Stack outputs in the emulated CloudFormation: the CLI discovers local and deployed stacks alike.
        self._c("cloudformation").create_stack(
            StackName=stack,
            TemplateBody=json.dumps(
                {
                    "Resources": {
                        "Marker": {
                            "Type": "AWS::SSM::Parameter",
                            "Properties": {"Name": f"/mlops/local/{stack}", "Type": "String", "Value": "emulated"},
                        }
                    },
                    "Outputs": {k: {"Value": v} for k, v in outputs.items() if not k.startswith("Exports")},
                }
            ),
        )

    def _share_environment(self) -> None:
        """Every function's resource names in this process's environment too: handlers read them on first use."""
        for spec in seams.functions().values():
            shared = {k: v for k, v in spec.env.items() if k.startswith(("MLOPS_", "POWERTOOLS_SERVICE"))}
            shared.pop(ENV_FUNCTION, None)
            for key in TUNABLES:  # a value already in the environment wins locally (e.g. a short cache)
                if key in os.environ:
                    shared.pop(key, None)
            os.environ.update(shared)

    # -- events -----------------------------------------------------------------
    def _api_name(self) -> str:
        """The REST API's name: the ApiName dimension of its metrics."""
        apis = resources_of_type(self.templates.get(self._stack("Serving"), {}), "AWS::ApiGateway::RestApi")
        return str(next((r["Properties"].get("Name", "") for r in apis.values()), ""))

    def now(self) -> datetime:
        """The emulated clock: the wall clock plus what :meth:`tick` (or ``mlops local tick --advance``, through
        the endpoint's clock file) has advanced — :func:`mlops.core.clock.utcnow` in this process and in every
        execution environment it runs."""
        self.clock_offset_s = read_clock_offset(self.endpoint)
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset_s)

    def evaluation_time(self) -> datetime:
        """The time alarms are evaluated at: the emulated clock as the last tick left it settled (see
        :func:`settle_clock`) — while a tick's scheduled targets (the monitor) are still at work, the clock they
        judge has moved, and the periods they have not judged yet are not evaluated as missing."""
        return datetime.now(UTC) + timedelta(seconds=read_settled_offset(self.endpoint))

    def evaluate_alarms(self) -> list[dict[str, Any]]:
        """Evaluate every alarm now (CloudWatch does, every minute); return the state changes."""
        if self.alarms is None:
            return []
        if self.metrics is not None:
            self.metrics.flush()
        changes = self.alarms.evaluate()
        self.alarm_changes.extend(changes)
        return changes

    def tick(self, rule_name: str | None = None, advance_s: float = 0.0) -> list[str]:
        """Move the emulated clock ``advance_s`` forward and fire the scheduled rules that are due by then (a
        rate(1 hour) rule after an hour, a rate(7 days) rule after a week) — or, without ``advance_s``, every
        scheduled rule (or the one named) now. Then wait for what they invoked, settle the clock (alarms are
        evaluated at the new time from then on) and evaluate the alarms."""
        with self._ticking:
            return self._tick(rule_name, advance_s)

    def _tick(self, rule_name: str | None, advance_s: float) -> list[str]:
        from mlops.core.clock import schedule_period_s

        seams.drain(timeout=120)  # what is in flight (captured traffic on its way to S3) lands first
        self.clock_offset_s = write_clock_offset(self.endpoint, advance_s, settle=False)
        fired = []
        now = self.now()
        for rule in seams.event_rules(ACCOUNT, REGION):
            if not rule.scheduled_expression or (rule_name and rule.name != rule_name):
                continue
            last = self._last_fired.setdefault(rule.name, self._started_at)
            due = (now - last).total_seconds() >= schedule_period_s(rule.scheduled_expression)
            if advance_s and not rule_name and not due:
                continue
            self._last_fired[rule.name] = now
            event = {
                "version": "0",
                "id": f"local-{time.time_ns()}",
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": ACCOUNT,
                "time": self.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": REGION,
                "resources": [rule.arn],
                "detail": {},
            }
            seams.deliver_to_lambda_targets(rule, event)
            fired.append(rule.name)
        seams.drain(timeout=600)
        settle_clock(self.endpoint)
        self.evaluate_alarms()
        seams.drain(timeout=60)  # what an alarm's state change started (the trigger)
        mark_reported(self.endpoint, self.now())
        return fired

    def put_event(self, event: dict[str, Any]) -> None:
        """Deliver an event to every matching rule's Lambda targets (as the default bus would)."""
        for rule in seams.event_rules(ACCOUNT, REGION):
            if seams.rule_matches(rule, event):
                seams.deliver_to_lambda_targets(rule, event)

    def _watch_executions(self) -> None:
        """Emit "Step Functions Execution Status Change" when an execution ends (EventBridge does in AWS)."""
        last_evaluation = time.monotonic()
        while not self._stop.wait(0.2):
            if time.monotonic() - last_evaluation > ALARM_EVALUATION_S:
                last_evaluation = time.monotonic()
                try:
                    self.evaluate_alarms()
                except Exception as err:  # noqa: BLE001 — the clock thread outlives any one evaluation; reported
                    seams.log(f"alarm evaluation: {type(err).__name__}: {err}")
            try:
                for execution in seams.finished_executions(ACCOUNT, REGION):
                    if execution.arn not in self._reported:
                        self._reported.add(execution.arn)
                        self._execution_ended(execution)
            except Exception as err:  # noqa: BLE001 — the watcher thread keeps watching; reported
                seams.log(f"execution watcher: {type(err).__name__}: {err}")

    def _execution_ended(self, execution: seams.FinishedExecution) -> None:
        """AWS/States metrics and the "Step Functions Execution Status Change" event of an ended execution."""
        status = execution.status
        if self.metrics is not None:
            metric = {"SUCCEEDED": "ExecutionsSucceeded", "FAILED": "ExecutionsFailed"}.get(
                status, f"Executions{status.title().replace('_', '')}"
            )
            self.metrics.add("AWS/States", metric, 1, {"StateMachineArn": execution.state_machine_arn}, "Count")
        self.put_event(
            {
                "version": "0",
                "id": f"local-{time.time_ns()}",
                "detail-type": "Step Functions Execution Status Change",
                "source": "aws.states",
                "account": ACCOUNT,
                "time": _iso_now(),
                "region": REGION,
                "resources": [execution.arn],
                "detail": {
                    "executionArn": execution.arn,
                    "stateMachineArn": execution.state_machine_arn,
                    "name": execution.name,
                    "status": status,
                    "input": json.dumps(execution.input),
                },
            }
        )


def project_of(configs: Path | str | list[Path] | None) -> Project:
    """The project the configs belong to (the nearest cdk.json above the first), else the working directory's."""
    first = configs[0] if isinstance(configs, list) and configs else configs
    if first is not None and not isinstance(first, list):
        try:
            return Project.find(Path(first).resolve().parent)
        except ProjectNotFoundError:
            pass
    return Project.find()


def project_models(
    configs: Path | str | list[Path] | None, env: str = "dev", project: Project | None = None
) -> list[Path]:
    """The model configs an emulator loads: those given (files or folders), else every model of the project's
    environment in cdk.json. Validated together, with the environment's feature sets (a model may take features
    from them), here: a clear error before anything starts."""
    from mlops.core.config import load_models, model_files

    project = project or Project.find()
    if configs is None:
        items: list[Path] = project.model_paths(env)
    else:
        items = [Path(c) for c in (configs if isinstance(configs, list) else [configs])]
    files = [f.resolve() for f in model_files(list(items))]
    load_models(list(files), project.feature_set_paths(env))
    return files


def _alarm_arguments(props: dict[str, Any]) -> dict[str, Any]:
    """PutMetricAlarm's arguments from an AWS::CloudWatch::Alarm's properties."""
    keys = (
        "AlarmDescription",
        "AlarmActions",
        "OKActions",
        "InsufficientDataActions",
        "MetricName",
        "Namespace",
        "Statistic",
        "ExtendedStatistic",
        "Dimensions",
        "Period",
        "EvaluationPeriods",
        "DatapointsToAlarm",
        "Threshold",
        "ComparisonOperator",
        "TreatMissingData",
        "Metrics",
    )
    out = {k: props[k] for k in keys if k in props}
    for k in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if k in out:
            out[k] = int(out[k])
    if "Threshold" in out:
        out["Threshold"] = float(out["Threshold"])
    for query in out.get("Metrics", []):
        if "MetricStat" in query:
            query["MetricStat"]["Period"] = int(query["MetricStat"]["Period"])
    return out


def _iso_now() -> str:
    return clock.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")


def _stub_zip(name: str) -> bytes:
    """moto wants code: a note saying where the real handler lives (it is run from functions/)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", f"# served offline by functions/{name}/handler.py\n")
    return buf.getvalue()


def clock_file(endpoint: str) -> Path:
    """Where the emulator at ``endpoint`` keeps its clock (one file per endpoint: emulators side by side never
    move each other's clocks): ``offset_s``, how far the emulated clock runs ahead of the wall clock;
    ``settled_s``, the offset alarms are evaluated at (behind ``offset_s`` while a tick is firing its
    schedules); ``reported_until``, up to when ``mlops local tick`` has printed the alarms' state changes."""
    from urllib.parse import urlsplit

    return state_dir() / f"clock-{urlsplit(endpoint).port}.json"


@contextlib.contextmanager
def clock_lock(endpoint: str) -> Iterator[None]:
    """Exclusive use of the emulator's clock across processes (the emulator, a CLI's tick): changes to the clock
    file, and alarm evaluation — two evaluators deciding at once would announce one state change twice."""
    path = clock_file(endpoint).with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_clock(endpoint: str) -> dict[str, Any]:
    """The emulator's clock file (see :func:`clock_file`); the wall clock's when there is none."""
    try:
        data = json.loads(clock_file(endpoint).read_text())
        offset = float(data["offset_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return {"endpoint": endpoint, "offset_s": 0.0, "settled_s": 0.0, "reported_until": None}
    return {
        "endpoint": endpoint,
        "offset_s": offset,
        "settled_s": float(data.get("settled_s", offset)),
        "reported_until": data.get("reported_until"),
    }


def _update_clock(endpoint: str, **changes: Any) -> dict[str, Any]:
    with clock_lock(endpoint):
        state = {**read_clock(endpoint), **changes}
        write_json_atomically(clock_file(endpoint), json.dumps(state))
    return state


def read_clock_offset(endpoint: str) -> float:
    return float(read_clock(endpoint)["offset_s"])


def read_settled_offset(endpoint: str) -> float:
    return float(read_clock(endpoint)["settled_s"])


def write_clock_offset(endpoint: str, advance_s: float, *, settle: bool = True) -> float:
    """Move the emulated clock of the emulator at ``endpoint`` forward; the new offset in seconds. ``settle=False``
    (a tick about to fire its schedules): alarms are still evaluated at the old time until :func:`settle_clock`."""
    with clock_lock(endpoint):
        state = read_clock(endpoint)
        state["offset_s"] = state["offset_s"] + advance_s
        if settle:
            state["settled_s"] = state["offset_s"]
        write_json_atomically(clock_file(endpoint), json.dumps(state))
    return float(state["offset_s"])


def settle_clock(endpoint: str) -> float:
    """The tick's scheduled targets are done: alarms are evaluated at the emulated clock again."""
    with clock_lock(endpoint):
        state = read_clock(endpoint)
        state["settled_s"] = state["offset_s"]
        write_json_atomically(clock_file(endpoint), json.dumps(state))
    return float(state["offset_s"])


def reported_until(endpoint: str) -> datetime | None:
    """Up to when the alarms' state changes have been reported by a tick (None: never: since the start)."""
    when = read_clock(endpoint)["reported_until"]
    return datetime.fromisoformat(when) if when else None


def mark_reported(endpoint: str, until: datetime) -> None:
    _update_clock(endpoint, reported_until=until.astimezone(UTC).isoformat())


def write_json_atomically(path: Path, text: str) -> None:
    """Write ``path`` so that a reader (another emulator, a CLI, a test worker) sees the old file or the new one,
    never a truncated one: a temporary file beside it, renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_local_file() -> dict[str, Any] | None:
    """The running emulator's endpoint and outputs, or None (no emulator, or a file being replaced)."""
    try:
        data = json.loads((state_dir() / LOCAL_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
