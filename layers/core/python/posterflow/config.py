"""Runtime settings of a function, read from its environment.

The names are defined in :mod:`posterflow.resources`; the CDK stack and the local cloud set
them from the same resource spec. Settings are read on each call (cheap) rather than cached
at import, because the local cloud runs several functions in one process.
"""

from __future__ import annotations

import os

from posterflow import resources as r


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


def signing_secret() -> bytes:
    """Secret for download-link tokens, job tokens and webhook signatures."""
    return os.environ.get("POSTERFLOW_SIGNING_SECRET", "posterflow-local-dev-secret").encode()
