"""The eight Lambda functions: six zip functions on two layers (the stream function also on Lambda
Web Adapter's) and two container images.

Each function gets its own role (no AWS-managed policy: it may write only to its own log
group), its own log group with a retention period, X-Ray tracing, and the environment the
resource spec defines, with CDK tokens for the deployment-specific values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import Duration, IgnoreMode, RemovalPolicy, Stack
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from posterflow import resources as r
from posterflow_infra.bundling import LAMBDA_RUNTIME, dependencies_code
from posterflow_infra.paths import CORE_LAYER_DIR, FUNCTIONS_DIR, REPO_ROOT

LOG_RETENTION = logs.RetentionDays.ONE_MONTH

# Lambda Web Adapter's public layer (AWS publishes it in every commercial region under this
# account; x86_64, matching the functions). Pinned: bump after reading the adapter's release notes.
LWA_LAYER_ACCOUNT = "753240598075"
LWA_LAYER_VERSION = 25


def lwa_layer_arn(region: str) -> str:
    return f"arn:aws:lambda:{region}:{LWA_LAYER_ACCOUNT}:layer:LambdaAdapterLayerX86:{LWA_LAYER_VERSION}"


# Docker build context of the container images: the repository root (the Dockerfiles COPY the
# core library and read uv.lock), cut down to what the images use so staging copies kilobytes,
# not the virtualenv. Docker ignore syntax: the last matching pattern wins.
def container_context_excludes(key: str) -> list[str]:
    return [
        "*",
        "!pyproject.toml",
        "!uv.lock",
        "!layers/core/python/posterflow",
        f"!functions/{key}",
        "**/__pycache__",
        "**/*.pyc",
    ]


class MissingSourceError(RuntimeError):
    pass


@dataclass(frozen=True)
class DeployedFunction:
    spec: r.FunctionSpec
    function: lambda_.Function
    role: iam.Role
    log_group: logs.LogGroup


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        spec: r.StackSpec,
        refs: r.ResourceRefs,
        reserve_concurrency: bool = True,
    ) -> None:
        super().__init__(scope, cid)
        self.core_layer = lambda_.LayerVersion(
            self, "CoreLayer",
            layer_version_name=f"{spec.prefix}-core",
            description="posterflow core library (layers/core)",
            code=lambda_.Code.from_asset(str(CORE_LAYER_DIR), exclude=["**/__pycache__", "**/*.pyc"]),
            compatible_runtimes=[LAMBDA_RUNTIME],
            compatible_architectures=[lambda_.Architecture.X86_64],
        )
        self.dependencies_layer = lambda_.LayerVersion(
            self, "DependenciesLayer",
            layer_version_name=f"{spec.prefix}-dependencies",
            description="Third-party packages of the core library, pinned by uv.lock",
            code=dependencies_code(),
            compatible_runtimes=[LAMBDA_RUNTIME],
            compatible_architectures=[lambda_.Architecture.X86_64],
        )
        self.by_key: dict[str, DeployedFunction] = {}
        for fn in spec.functions:
            self.by_key[fn.key] = self._function(fn, r.function_environment(spec, fn, refs),
                                                 reserved=spec.reserved_concurrency(fn.key)
                                                 if reserve_concurrency else None)

    def __getitem__(self, key: str) -> lambda_.Function:
        return self.by_key[key].function

    def _function(self, fn: r.FunctionSpec, environment: dict[str, str], *,
                  reserved: int | None = None) -> DeployedFunction:
        cid = fn.key.title()
        log_group = logs.LogGroup(
            self, f"{cid}Logs",
            log_group_name=f"/aws/lambda/{fn.name}",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self, f"{cid}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            # IAM descriptions allow Latin-1 only; the spec's descriptions may hold arrows.
            description=f"Execution role of {fn.name}",
        )
        log_group.grant_write(role)
        common: dict[str, Any] = {
            "function_name": fn.name,
            "description": fn.description,
            "memory_size": fn.memory_mb,
            "timeout": Duration.seconds(fn.timeout_s),
            "environment": environment,
            "role": role,
            "log_group": log_group,
            "tracing": lambda_.Tracing.ACTIVE,
            "architecture": lambda_.Architecture.X86_64,
            # A function fed by priority lanes reserves the sum of its lanes' maximum concurrency:
            # the normal lane's event source stops at its own maximum, so the rest is always
            # there for the urgent lane (infra/README.md, "Priority lanes"). Context
            # posterflow:reservedConcurrency=off leaves it out (accounts on a low quota).
            "reserved_concurrent_executions": reserved,
        }
        function: lambda_.Function
        layers: list[lambda_.ILayerVersion] = [self.core_layer, self.dependencies_layer]
        if fn.invoke_mode == "response_stream":
            # Lambda Web Adapter: its /opt/bootstrap wrapper runs the handler (run.sh, the
            # function's HTTP server) and streams the server's answers (AWS_LWA_INVOKE_MODE).
            layers.append(lambda_.LayerVersion.from_layer_version_arn(
                self, f"{cid}WebAdapter", lwa_layer_arn(Stack.of(self).region)))
        if fn.package == "container":
            function = lambda_.DockerImageFunction(self, cid, code=_image_code(fn), **common)
        else:
            function = lambda_.Function(
                self, cid,
                runtime=LAMBDA_RUNTIME,
                handler=fn.handler,
                code=lambda_.Code.from_asset(
                    str(_source_dir(fn)),
                    exclude=["**/__pycache__", "**/*.pyc", "Dockerfile", "requirements.txt"],
                ),
                layers=layers,
                **common,
            )
        return DeployedFunction(spec=fn, function=function, role=role, log_group=log_group)


def _source_dir(fn: r.FunctionSpec) -> Path:
    path = FUNCTIONS_DIR / fn.key
    if not path.is_dir():
        raise MissingSourceError(f"function {fn.key!r}: directory {path.relative_to(REPO_ROOT)}/ is missing")
    return path


def _image_code(fn: r.FunctionSpec) -> lambda_.DockerImageCode:
    dockerfile = FUNCTIONS_DIR / fn.key / "Dockerfile"
    if not dockerfile.is_file():
        raise MissingSourceError(f"function {fn.key!r}: {dockerfile.relative_to(REPO_ROOT)} is missing")
    return lambda_.DockerImageCode.from_image_asset(
        str(REPO_ROOT),
        file=str(dockerfile.relative_to(REPO_ROOT)),
        # The image's CMD comes from the spec, so handler names live in one place.
        cmd=[fn.handler],
        platform=ecr_assets.Platform.LINUX_AMD64,
        exclude=container_context_excludes(fn.key),
        ignore_mode=IgnoreMode.DOCKER,
    )
