"""Runtime settings of a function, read from its environment.

The names are defined in :mod:`posterflow.resources`; the CDK stack and the local cloud set
them from the same resource spec. Settings are read on each call (cheap) rather than cached
at import, because the local cloud runs several functions in one process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from posterflow import resources as r
from posterflow import signing_keys

T = TypeVar("T")


class ConfigError(RuntimeError):
    """A required setting is missing."""


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"environment variable {name} is not set")
    return value


def bucket() -> str:
    return _required(r.ENV_BUCKET)


def table() -> str:
    return _required(r.ENV_TABLE)


def queue_url(key: str) -> str:
    return _required(r.ENV_QUEUE_URL.format(key=key.upper()))


def state_machine_arn(key: str) -> str:
    return _required(r.ENV_STATE_MACHINE_ARN.format(key=key.upper()))


def function_name(key: str) -> str:
    return _required(r.ENV_FUNCTION_NAME.format(key=key.upper()))


def ses_sender() -> str:
    return _required(r.ENV_SES_SENDER)


def websocket_endpoint() -> str:
    return os.environ.get(r.ENV_WEBSOCKET_ENDPOINT, "")


def websocket_url() -> str:
    return os.environ.get(r.ENV_WEBSOCKET_URL, "")


def api_url() -> str:
    return os.environ.get(r.ENV_API_URL, "")


def retention_days() -> int:
    return int(os.environ.get(r.ENV_RETENTION_DAYS, "30"))


# The signing secret (download links, job tokens, webhook secrets). Functions get the ARN of a
# Secrets Manager secret and read the value at run time, so the value is in no function's
# configuration; the local cloud creates the secret in its embedded Secrets Manager and sets the
# same variable. The direct value is an override for tests and local experiments only.
ENV_SIGNING_SECRET_ARN = "POSTERFLOW_SIGNING_SECRET_ARN"
ENV_SIGNING_SECRET = "POSTERFLOW_SIGNING_SECRET"


def _direct_signing_secret() -> bytes | None:
    value = os.environ.get(ENV_SIGNING_SECRET)
    return value.encode() if value else None


def _signing_secret_arn() -> str:
    arn = os.environ.get(ENV_SIGNING_SECRET_ARN)
    if not arn:
        # No fallback value: a constant in the source would let anyone forge links and tokens.
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


ENV_TEMPLATE_JAVASCRIPT = r.ENV_TEMPLATE_JAVASCRIPT


def template_javascript_allowed() -> bool:
    """``POSTERFLOW_TEMPLATE_JAVASCRIPT``: ``allow`` lets templates run JavaScript while they
    render; anything else, including unset, means ``deny`` (fail closed: a typo never turns
    scripts on). Read per call, so the local cloud and tests can switch it at run time."""
    return os.environ.get(ENV_TEMPLATE_JAVASCRIPT, "deny").strip().lower() == "allow"
