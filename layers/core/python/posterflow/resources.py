"""The one resource spec: names and settings of every AWS resource posterflow uses.

Both the CDK stack (``infra/``) and the local cloud (``local/``) build their resources from
this module, so timeouts, batch sizes, redrive counts, retention and concurrency are written
down once. A contract test checks that the synthesized template and the local cloud agree.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from posterflow import config

PROJECT = "posterflow"
REPO_ROOT = Path(__file__).resolve().parents[4]
STATEMACHINE_DIR = REPO_ROOT / "infra" / "statemachines"
FUNCTIONS_DIR = REPO_ROOT / "functions"


LaneName = Literal["urgent", "normal"]
"""A priority lane (posterflow.jobs.lanes decides a job's lane from its priority)."""


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True)


class QueueSpec(_Spec):
    key: str
    name: str
    visibility_timeout_s: int
    retention_s: int = 4 * 24 * 3600
    max_receive_count: int = 3
    dlq_name: str
    dlq_retention_s: int = 14 * 24 * 3600
    consumer: str | None = Field(None, description="key of the function fed by this queue")
    batch_size: int = 10
    max_batching_window_s: int = 0
    max_concurrency: int = Field(2, ge=2, description="SQS event source maximum concurrency")
    lane: LaneName | None = Field(None, description="the priority lane of the consumer's work this queue carries "
                                                    "(None: the consumer has one queue)")
    local_concurrency: int | None = Field(
        None, ge=1, description="the local cloud's pollers of this queue, its stand-in for max_concurrency "
                                "(None: the consumer's local_concurrency)")


class FunctionSpec(_Spec):
    key: str
    name: str
    description: str
    package: Literal["zip", "container"] = "zip"
    handler: str = "handler.handler"
    memory_mb: int
    timeout_s: int
    # ``response_stream``: an HTTP server behind Lambda Web Adapter whose answers API Gateway
    # streams (the job streams); the local cloud's gateway runs it in-process instead of
    # invoking a handler.
    invoke_mode: Literal["buffered", "response_stream"] = "buffered"
    # How many instances run at once on the local cloud; in AWS, the event source's
    # maximum concurrency bounds the same thing (a function fed by lanes: the sum of its lanes').
    local_concurrency: int = 1

    @property
    def directory(self) -> Path:
        return FUNCTIONS_DIR / self.key


class TableSpec(_Spec):
    name: str
    partition_key: str = "PK"
    sort_key: str = "SK"
    gsi_name: str = "GSI1"
    gsi_partition_key: str = "GSI1PK"
    gsi_sort_key: str = "GSI1SK"
    ttl_attribute: str = "expires_at"
    stream_view: Literal["NEW_AND_OLD_IMAGES"] = "NEW_AND_OLD_IMAGES"
    stream_consumer: str = "progress"
    stream_batch_size: int = 100


class UploadNotification(_Spec):
    prefix: str
    suffix: str
    queue: str


class BucketSpec(_Spec):
    name: str
    uploads_prefix: str = "uploads/"
    outputs_prefix: str = "outputs/"
    archives_prefix: str = "archives/"
    templates_prefix: str = "templates/"
    assets_prefix: str = "assets/"
    manifests_prefix: str = "manifests/"
    retention_days: int = 30
    # Prefixes that the lifecycle rule expires after ``retention_days``.
    expiring_prefixes: tuple[str, ...] = ("uploads/", "outputs/", "archives/", "manifests/")
    notifications: tuple[UploadNotification, ...] = (
        UploadNotification(prefix="uploads/", suffix=".zip", queue="split"),
        UploadNotification(prefix="uploads/", suffix=".csv", queue="split"),
    )


class StateMachineSpec(_Spec):
    key: str
    name: str
    definition_file: str
    # ASL placeholder ``${Name}`` → function key whose ARN is substituted in.
    function_substitutions: dict[str, str]
    timeout_s: int = 3600

    @property
    def definition_path(self) -> Path:
        return STATEMACHINE_DIR / self.definition_file


class StackSpec(_Spec):
    prefix: str
    bucket: BucketSpec
    table: TableSpec
    queues: tuple[QueueSpec, ...]
    functions: tuple[FunctionSpec, ...]
    state_machines: tuple[StateMachineSpec, ...]
    dlq_consumer: str = "dlq"
    ses_sender: str = "posterflow@example.com"
    job_retention_days: int = 30
    api_stage: str = "prod"
    websocket_stage: str = "prod"
    # The REST API's binaryMediaTypes (the CDK stack and the local gateway both read this).
    # API Gateway decodes a base64 (``isBase64Encoded``) *response* only when the request's
    # first Accept type matches one, so ``*/*``: previews and other binary answers arrive as
    # bytes for browsers (``image/avif,image/webp,…``), curl and requests/httpx (``*/*``) and
    # the Python client (``application/json``). The price: every request body reaches the
    # function base64-encoded; the body gate (``posterflow.api.body``) decodes all but the
    # forms and ZIPs a route reads as bytes, and checks them as text.
    api_binary_media_types: tuple[str, ...] = ("*/*",)
    # API Gateway's fixed cap on a REST request body (413 REQUEST_TOO_LARGE above it).
    api_max_request_bytes: int = 10 * 1024 * 1024
    # Whether tenants' templates may run JavaScript (POSTERFLOW_TEMPLATE_JAVASCRIPT): off unless
    # a deployment decides its tenants are trusted with it.
    template_javascript: Literal["allow", "deny"] = "deny"

    # The DLQs are drained by one function; Lambda refuses an SQS event source whose visibility
    # timeout is below the function's timeout, and AWS recommends six times it.
    heartbeat_interval_s: int = 60  # EventBridge's finest rate is one minute
    # A job with no progress for this long has its outstanding items failed ("stalled"), so
    # it completes instead of hanging; the sweep runs every ``sweep_interval_s``.
    job_stall_timeout_s: int = 1800
    sweep_interval_s: int = 300
    dlq_batch_size: int = 10
    dlq_max_concurrency: int = 2

    @property
    def dlq_visibility_timeout_s(self) -> int:
        return 6 * self.function(self.dlq_consumer).timeout_s

    @property
    def api_too_large_error(self) -> dict[str, Any]:
        """The API's error shape for a body over :attr:`api_max_request_bytes`: the stack's
        ``REQUEST_TOO_LARGE`` gateway response and the local gateway both answer it (413)."""
        return {"error": {
            "code": "payload_too_large",
            "message": f"request body is over API Gateway's {self.api_max_request_bytes} bytes; upload big ZIPs "
                       "or CSVs with POST /api/uploads (a presigned PUT, up to 5 GB)",
            "details": {"max_bytes": self.api_max_request_bytes, "use": "POST /api/uploads"}}}

    @model_validator(mode="after")
    def _lanes_are_whole(self) -> StackSpec:
        """A function fed by lanes has exactly one queue per lane, and its local concurrency is
        the sum of its lanes' (as its reserved concurrency in AWS is the sum of their maxima)."""
        for fn in self.functions:
            fed = [q for q in self.queues if q.consumer == fn.key]
            if not any(q.lane for q in fed):
                continue
            if sorted(q.lane or "" for q in fed) != ["normal", "urgent"]:
                raise ValueError(f"{fn.key}: a function fed by lanes has one urgent and one normal queue, no other")
            local = [q.local_concurrency for q in fed]
            if None in local or fn.local_concurrency != sum(n or 0 for n in local):
                raise ValueError(f"{fn.key}: local_concurrency must be the sum of its lanes' local_concurrency")
        return self

    def function(self, key: str) -> FunctionSpec:
        for fn in self.functions:
            if fn.key == key:
                return fn
        raise KeyError(f"no function {key!r} in the resource spec")

    def queue(self, key: str) -> QueueSpec:
        for q in self.queues:
            if q.key == key:
                return q
        raise KeyError(f"no queue {key!r} in the resource spec")

    def lane(self, consumer: str, lane: LaneName) -> QueueSpec:
        """The queue of ``consumer``'s work in ``lane``; a function with one queue has it in
        every lane."""
        fed = [q for q in self.queues if q.consumer == consumer]
        for q in fed:
            if q.lane == lane or (q.lane is None and len(fed) == 1):
                return q
        raise KeyError(f"no {lane} lane for {consumer!r} in the resource spec")

    def reserved_concurrency(self, key: str) -> int | None:
        """The reserved concurrency of a function fed by lanes: the sum of its lanes' maximum
        concurrency, so the normal lane can never use the urgent lane's share (None: not reserved)."""
        lanes = [q.max_concurrency for q in self.queues if q.consumer == key and q.lane is not None]
        return sum(lanes) if lanes else None

    def state_machine(self, key: str) -> StateMachineSpec:
        for sm in self.state_machines:
            if sm.key == key:
                return sm
        raise KeyError(f"no state machine {key!r} in the resource spec")


# The lanes' capacity. In AWS each lane's event source has its maximum concurrency and the
# function reserves their sum; on the local cloud each lane has its own pollers and the
# function as many instances as its lanes' pollers together, so the urgent lane always finds
# an instance free of normal work.
URGENT_MAX_CONCURRENCY = 10
RENDER_LOCAL_CONCURRENCY = 2
CROP_LOCAL_CONCURRENCY = 2
URGENT_LOCAL_CONCURRENCY = 2


@functools.lru_cache(maxsize=16)
def stack_spec(prefix: str = PROJECT) -> StackSpec:
    """The resources of one deployment; ``prefix`` keeps deployments apart. Built once per
    prefix (the models are frozen): table and queue look-ups on every item read it."""

    def name(part: str) -> str:
        return f"{prefix}-{part}"

    functions = (
        FunctionSpec(
            key="api",
            name=name("api"),
            description="REST API (API Gateway proxy)",
            memory_mb=1024,
            timeout_s=29,
            local_concurrency=4,
        ),
        FunctionSpec(
            key="splitter",
            name=name("splitter"),
            description="Splits uploads and batch manifests into per-item messages",
            memory_mb=512,
            timeout_s=300,
            local_concurrency=2,
        ),
        FunctionSpec(
            key="render",
            name=name("render"),
            package="container",
            description="Renders posters with headless Chromium",
            memory_mb=3008,
            timeout_s=120,
            local_concurrency=RENDER_LOCAL_CONCURRENCY + URGENT_LOCAL_CONCURRENCY,
        ),
        FunctionSpec(
            key="crop",
            name=name("crop"),
            package="container",
            description="Detects faces and crops photos",
            memory_mb=1536,
            timeout_s=60,
            local_concurrency=CROP_LOCAL_CONCURRENCY + URGENT_LOCAL_CONCURRENCY,
        ),
        FunctionSpec(
            key="progress",
            name=name("progress"),
            description="WebSocket routes and DynamoDB stream → progress events",
            memory_mb=512,
            timeout_s=30,
            local_concurrency=1,
        ),
        FunctionSpec(
            key="stream",
            name=name("stream"),
            description="Server-Sent Events job streams (Lambda Web Adapter, response streaming)",
            handler="run.sh",
            invoke_mode="response_stream",
            memory_mb=256,
            # One stream lasts POSTERFLOW_SSE_MAX_DURATION_S (840 s); API Gateway ends any
            # stream at 15 minutes.
            timeout_s=900,
        ),
        FunctionSpec(
            key="finalize",
            name=name("finalize"),
            description="Finalize workflow tasks: archive, email, webhook",
            memory_mb=1024,
            timeout_s=900,
            local_concurrency=2,
        ),
        FunctionSpec(
            key="dlq",
            name=name("dlq"),
            description="Marks items whose messages exhausted their retries as failed",
            memory_mb=256,
            timeout_s=60,
            local_concurrency=1,
        ),
    )
    queues = (
        QueueSpec(
            key="split",
            name=name("split"),
            dlq_name=name("split-dlq"),
            visibility_timeout_s=1800,
            consumer="splitter",
            batch_size=1,
            max_concurrency=5,
        ),
        # Priority lanes (posterflow.jobs.lanes): the normal lane keeps the queue names and
        # keys of one-queue days; the urgent lane has capacity of its own.
        QueueSpec(
            key="render",
            name=name("render"),
            dlq_name=name("render-dlq"),
            visibility_timeout_s=720,
            consumer="render",
            batch_size=10,
            max_concurrency=50,
            lane="normal",
            local_concurrency=RENDER_LOCAL_CONCURRENCY,
        ),
        QueueSpec(
            key="render_urgent",
            name=name("render-urgent"),
            dlq_name=name("render-urgent-dlq"),
            visibility_timeout_s=720,
            consumer="render",
            batch_size=10,
            max_concurrency=URGENT_MAX_CONCURRENCY,
            lane="urgent",
            local_concurrency=URGENT_LOCAL_CONCURRENCY,
        ),
        QueueSpec(
            key="crop",
            name=name("crop"),
            dlq_name=name("crop-dlq"),
            visibility_timeout_s=360,
            consumer="crop",
            batch_size=10,
            max_concurrency=50,
            lane="normal",
            local_concurrency=CROP_LOCAL_CONCURRENCY,
        ),
        QueueSpec(
            key="crop_urgent",
            name=name("crop-urgent"),
            dlq_name=name("crop-urgent-dlq"),
            visibility_timeout_s=360,
            consumer="crop",
            batch_size=10,
            max_concurrency=URGENT_MAX_CONCURRENCY,
            lane="urgent",
            local_concurrency=URGENT_LOCAL_CONCURRENCY,
        ),
    )
    return StackSpec(
        prefix=prefix,
        bucket=BucketSpec(name=name("data")),
        table=TableSpec(name=name("jobs")),
        queues=queues,
        functions=functions,
        state_machines=(
            StateMachineSpec(
                key="finalize",
                name=name("finalize"),
                definition_file="finalize.asl.json",
                function_substitutions={"FinalizeFunctionArn": "finalize"},
            ),
        ),
    )


# Environment variable names given to every function; values differ per deployment. Declared
# (with default, meaning and scope) in posterflow.config, the one registry of settings.
ENV_BUCKET = config.ENV_BUCKET
ENV_TABLE = config.ENV_TABLE
ENV_QUEUE_URL = config.ENV_QUEUE_URL  # key upper-cased: SPLIT, RENDER, CROP (and SPLIT_DLQ, …)
ENV_STATE_MACHINE_ARN = config.ENV_STATE_MACHINE_ARN
ENV_FUNCTION_NAME = config.ENV_FUNCTION_NAME
ENV_SES_SENDER = config.ENV_SES_SENDER
ENV_WEBSOCKET_ENDPOINT = config.ENV_WEBSOCKET_ENDPOINT
ENV_WEBSOCKET_URL = config.ENV_WEBSOCKET_URL
ENV_API_URL = config.ENV_API_URL
ENV_RETENTION_DAYS = config.ENV_RETENTION_DAYS
ENV_TEMPLATE_JAVASCRIPT = config.ENV_TEMPLATE_JAVASCRIPT


# Lambda Web Adapter (the stream function): its wrapper script in the layer, the port of the
# function's own HTTP server and the path the adapter polls until that server answers.
LWA_WRAPPER = "/opt/bootstrap"
LWA_PORT = 8080
LWA_READINESS_PATH = "/healthz"


class ResourceRefs(BaseModel):
    """Concrete (local) or token (CDK) values for the resources a function refers to."""

    bucket: str
    table: str
    queue_urls: dict[str, str]
    state_machine_arns: dict[str, str]
    function_names: dict[str, str]
    websocket_endpoint: str = ""
    websocket_url: str = ""
    api_url: str = ""


def function_environment(spec: StackSpec, fn: FunctionSpec, refs: ResourceRefs) -> dict[str, str]:
    """The environment variables a function gets, in AWS and on the local cloud alike."""
    env = {
        ENV_BUCKET: refs.bucket,
        ENV_TABLE: refs.table,
        ENV_SES_SENDER: spec.ses_sender,
        ENV_RETENTION_DAYS: str(spec.job_retention_days),
        ENV_WEBSOCKET_ENDPOINT: refs.websocket_endpoint,
        ENV_WEBSOCKET_URL: refs.websocket_url,
        ENV_API_URL: refs.api_url,
        ENV_TEMPLATE_JAVASCRIPT: spec.template_javascript,
        config.POWERTOOLS_SERVICE_NAME.name: fn.name,
        config.POWERTOOLS_METRICS_NAMESPACE.name: spec.prefix,
        config.POWERTOOLS_LOG_LEVEL.name: "INFO",
    }
    if fn.invoke_mode == "response_stream":
        env.update({
            config.LAMBDA_EXEC_WRAPPER.name: LWA_WRAPPER,
            config.LWA_INVOKE_MODE.name: "response_stream",
            config.LWA_PORT.name: str(LWA_PORT),
            config.LWA_READINESS_CHECK_PATH.name: LWA_READINESS_PATH,
        })
    for key, url in refs.queue_urls.items():
        env[config.QUEUE_URL.env_name(key)] = url
    for key, arn in refs.state_machine_arns.items():
        env[config.STATE_MACHINE_ARN.env_name(key)] = arn
    for key, fname in refs.function_names.items():
        env[config.FUNCTION_NAME.env_name(key)] = fname
    return env
