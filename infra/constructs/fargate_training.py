"""ECS Fargate for the refit past one Lambda: the network, the cluster and the task definition the training state
machine runs with ``ecs:runTask.sync`` (see :class:`mlops.infra.constructs.training_pipeline.TrainingPipeline`).

* **Network: public subnets, a public IP, no NAT gateway.** The task only calls AWS APIs (S3, DynamoDB, SSM, ECR,
  CloudWatch Logs) and accepts no connection: its security group has no inbound rule. A public IP on a public
  subnet reaches them through the internet gateway at no idle cost (a NAT gateway is ~$33 a month per AZ, and the
  five interface endpoints the task would need ~$37 a month per AZ); the IPv4 address is billed only while a task
  runs ($0.005 an hour). Traffic to S3 in the same region is not charged either way.
* **Cluster** with the Fargate and Fargate Spot capacity providers (Spot chosen per model, ``training.fargate.spot``).
* **Task definition**: one container, the train bundle's image (a Docker image asset: ``cdk synth`` stages its
  context without Docker, ``cdk deploy`` builds and pushes it), the pipeline functions' environment, logs in a
  group with the environment's retention. Its size is the largest any model asks for; each run asks for its own
  (``cpu``/``memory`` overrides from the plan).
* **Task role**: reads the run's prepared splits (``runs/*/prepare/*``) and its own step's prefix, writes only
  under ``runs/*/train/*``, records the step in the runs and lineage tables and reads the model configs.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import RemovalPolicy, Stack, Tags
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm

from constructs import Construct
from mlops.core.constants import RUNS_PREFIX, TASK_CONTAINER
from mlops.infra import nag

TASK_COMMAND = ["python", "-m", "mlops.tasks.train"]


class FargateTraining(Construct):
    """Exposes ``cluster``, ``task_definition``, ``container``, ``security_group`` and ``subnets``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        context_dir: Path,
        architecture: str,
        cpu: int,
        memory_mb: int,
        ephemeral_gb: int,
        environment: dict[str, str],
        artifacts: s3.IBucket,
        runs: dynamodb.ITableV2,
        lineage: dynamodb.ITableV2,
        config_parameters: list[ssm.IStringParameter],
        log_retention: logs.RetentionDays,
        removal: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24)
            ],
            # No custom resource to empty the default group: nothing is ever placed in it.
            restrict_default_security_group=False,
        )
        # The network's Name tags by stack, not by construct path (which a delivery stage prefixes with its own
        # name): the stage deploys what `cdk deploy` does, resource for resource.
        Tags.of(self.vpc).add("Name", f"{Stack.of(self).stack_name}-training", priority=300)
        self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
        self.security_group = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=self.vpc,
            description="serverless-mlops training task: no inbound rule; outbound to AWS APIs",
            allow_all_outbound=True,
        )
        self.cluster = ecs.Cluster(self, "Cluster", vpc=self.vpc, enable_fargate_capacity_providers=True)
        arm = architecture == "arm64"
        image = ecr_assets.DockerImageAsset(
            self,
            "Image",
            directory=str(context_dir),
            platform=ecr_assets.Platform.LINUX_ARM64 if arm else ecr_assets.Platform.LINUX_AMD64,
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TrainTask",
            family=f"{Stack.of(self).stack_name}-train",  # by stack, as the Name tags above
            cpu=cpu,
            memory_limit_mib=memory_mb,
            ephemeral_storage_gib=ephemeral_gb,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.ARM64 if arm else ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=removal)
        self.container = self.task_definition.add_container(
            TASK_CONTAINER,
            image=ecs.ContainerImage.from_docker_image_asset(image),
            command=TASK_COMMAND,
            environment=environment,
            logging=ecs.LogDrivers.aws_logs(stream_prefix="train", log_group=self.log_group),
            essential=True,
        )
        role = self.task_definition.task_role
        artifacts.grant_read(role, f"{RUNS_PREFIX}*/prepare/*")
        artifacts.grant_read(role, f"{RUNS_PREFIX}*/train/*")
        artifacts.grant_put(role, f"{RUNS_PREFIX}*/train/*")
        runs.grant_read_write_data(role)
        lineage.grant_read_write_data(role)
        for parameter in config_parameters:
            parameter.grant_read(role)
        nag.acknowledge(self.vpc, "AwsSolutions-VPC7", FLOW_LOGS_REASON)
        nag.acknowledge(self.cluster, "AwsSolutions-ECS4", INSIGHTS_REASON)
        nag.acknowledge(self.task_definition, "AwsSolutions-ECS2", ENVIRONMENT_REASON)


FLOW_LOGS_REASON = (
    "The VPC holds only the training task's network interface, which accepts no connection (no inbound rule) and "
    "calls only AWS APIs, each logged by CloudTrail; flow logs would add a log group and a role for no finding."
)
INSIGHTS_REASON = (
    "Container Insights bills its metrics per task; a training task's exit code, stop reason and duration are in "
    "the run record, its output in its log group."
)
ENVIRONMENT_REASON = (
    "The environment holds resource names only (buckets, tables, the config catalog parameter), the same the "
    "pipeline's Lambda functions get; no secret."
)
