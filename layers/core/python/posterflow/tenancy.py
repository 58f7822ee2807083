"""Tenants: who owns a job, a template, an upload or an output, and the per-tenant webhook secret.

In AWS the REST API requires an API key; API Gateway puts the key's id into the request
context (``identity.apiKeyId``), and that id is the tenant. Requests without a key (the local
cloud, S3 drops) belong to the ``default`` tenant. Everything a tenant makes carries its id:
jobs and idempotency records hold it, template records are keyed by it, and every S3 key the
system writes for it sits under ``<kind prefix><tenant>/`` (``outputs/<tenant>/<job_id>/…``), so
"does this caller own this object" is a prefix check that needs no IAM.

Each tenant's webhook secret is derived from the deployment's signing secret, so no
per-tenant state has to be stored or rotated separately; a tenant reads its own with
``GET /api/webhook-secret``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from contextvars import ContextVar
from typing import Any

from posterflow import config

DEFAULT_TENANT = "default"
# API Gateway key ids are short alphanumerics; anything else (a local cloud's made-up id, a
# header a proxy put there) is hashed into this alphabet so it is safe inside S3 keys and
# DynamoDB key strings (no "/" or "#").
_SAFE_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_current: ContextVar[str] = ContextVar("posterflow_tenant", default=DEFAULT_TENANT)


def normalise(tenant: str | None) -> str:
    if not tenant:
        return DEFAULT_TENANT
    if _SAFE_TENANT.match(tenant):
        return tenant
    return "t-" + hashlib.sha256(tenant.encode()).hexdigest()[:24]


def current() -> str:
    return _current.get()


def use(tenant: str | None) -> None:
    """Set the tenant of the request being handled (the API handler calls this per event)."""
    _current.set(normalise(tenant))


def from_event(event: dict[str, Any]) -> str:
    identity = (event.get("requestContext") or {}).get("identity") or {}
    return normalise(str(identity.get("apiKeyId") or "") or None)


def scoped_key(prefix: str, tenant: str, rest: str) -> str:
    """``<prefix><tenant>/<rest>``: the S3 key of something the tenant owns (``prefix`` is one
    of the bucket spec's prefixes, e.g. ``outputs/``)."""
    return f"{prefix}{normalise(tenant)}/{rest.lstrip('/')}"


def owns_key(tenant: str, key: str, prefixes: tuple[str, ...]) -> bool:
    """Whether ``key`` lies under ``<prefix><tenant>/`` for one of ``prefixes``."""
    tenant = normalise(tenant)
    return any(key.startswith(f"{p}{tenant}/") for p in prefixes)


def _derive(signing_secret: bytes, tenant: str | None) -> bytes:
    derived = hmac.new(signing_secret, f"webhook:{tenant or DEFAULT_TENANT}".encode(), hashlib.sha256)
    return derived.hexdigest().encode()


def webhook_secret(tenant: str | None) -> bytes:
    """The HMAC key of ``X-Posterflow-Signature`` for this tenant's webhooks (hex, as bytes)."""
    return _derive(config.signing_secret(), tenant)


def webhook_secrets(tenant: str | None) -> tuple[bytes, ...]:
    """The keys a delivery is signed with: the current one, and after a rotation of the signing
    secret the previous one too, so a receiver that still holds the old key keeps verifying
    until it fetches the new one (``GET /api/webhook-secret``)."""
    previous = config.previous_signing_secret()
    current = webhook_secret(tenant)
    return (current,) if previous is None else (current, _derive(previous, tenant))
