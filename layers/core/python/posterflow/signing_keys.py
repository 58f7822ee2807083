"""The signing secret's versions, read from Secrets Manager at run time.

Functions get the secret's ARN, never its value (see :func:`posterflow.config.signing_secret`).
Values are read with Powertools Parameters and cached for :data:`MAX_AGE_S`, so a warm
function asks Secrets Manager about once per five minutes.

Rotation: new tokens are signed with ``AWSCURRENT``; verification also accepts
``AWSPREVIOUS``, so a token signed just before a rotation stays valid for its lifetime.
Powertools keys its cache by secret name only, not by ``VersionStage``, so each stage has its
own provider (one cache each); otherwise a cached current value would be returned as the
previous one.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from posterflow import aws

CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"
MAX_AGE_S = 300
# A token no cached version accepts may come from an instance that already sees a newer
# version: re-read both, but at most this often, so forged tokens cannot flood Secrets Manager.
REFRESH_INTERVAL_S = 30


class SecretUnavailable(RuntimeError):
    """The secret (or its current version) cannot be read; the message names why."""


_lock = threading.Lock()
_providers: dict[str, SecretsProvider] = {}
# secret id → the current value seen when the secret had no previous version. Before the first
# rotation there is none, and each bad token would ask again; a previous version only appears
# when the current one changes, so the belief holds exactly as long as the current value.
_no_previous_while: dict[str, bytes] = {}
_last_refresh: dict[str, float] = {}


def _monotonic() -> float:
    return time.monotonic()


def _client() -> Any:
    return aws.client("secretsmanager")


def _provider(stage: str) -> SecretsProvider:
    """This stage's provider, rebuilt when the library's client changed (the local cloud resets
    clients when its endpoint changes)."""
    client = _client()
    with _lock:
        provider = _providers.get(stage)
        if provider is None or provider.client is not client:
            provider = _providers[stage] = SecretsProvider(boto3_client=client)
        return provider


def clear_cache() -> None:
    """Forget every cached value (tests; a new execution environment starts this way)."""
    with _lock:
        _providers.clear()
        _no_previous_while.clear()
        _last_refresh.clear()


def _error_code(exc: BaseException) -> str:
    # Powertools wraps the SDK's error in GetParameterError(str(exc)) inside its except block,
    # so the ClientError is the context of the one we catch.
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ClientError):
        return str(cause.response.get("Error", {}).get("Code", ""))
    return ""


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise SecretUnavailable(f"the signing secret is a {type(value).__name__}, not a string")


def read(secret_id: str, stage: str, *, force: bool = False) -> bytes | None:
    """The value of ``stage``, or None if the secret has no version in that stage (a missing
    current version is an error)."""
    try:
        value = _provider(stage).get(secret_id, max_age=MAX_AGE_S, force_fetch=force, VersionStage=stage)
    except GetParameterError as exc:
        if _error_code(exc) == "ResourceNotFoundException" and stage != CURRENT:
            return None
        raise SecretUnavailable(f"cannot read {stage} of the signing secret {secret_id}: {exc}") from exc
    if not value:
        raise SecretUnavailable(f"the signing secret {secret_id} is empty")
    return _as_bytes(value)


def current(secret_id: str, *, force: bool = False) -> bytes:
    value = read(secret_id, CURRENT, force=force)
    assert value is not None  # read() raises for a missing current version
    return value


def previous(secret_id: str, *, force: bool = False) -> bytes | None:
    """None before the first rotation: a missing previous version is normal."""
    now_current = current(secret_id)
    if not force and _no_previous_while.get(secret_id) == now_current:
        return None
    value = read(secret_id, PREVIOUS, force=force)
    if value is None:
        _no_previous_while[secret_id] = now_current
    else:
        _no_previous_while.pop(secret_id, None)
    return value


def refresh(secret_id: str) -> bool:
    """Re-read both stages unless that was done less than :data:`REFRESH_INTERVAL_S` ago;
    whether it was done."""
    now = _monotonic()
    with _lock:
        last = _last_refresh.get(secret_id)
        if last is not None and now - last < REFRESH_INTERVAL_S:
            return False
        _last_refresh[secret_id] = now
    current(secret_id, force=True)
    previous(secret_id, force=True)
    return True
