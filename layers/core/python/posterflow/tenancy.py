"""Tenants: who submitted a job, and the per-tenant secret its webhooks are signed with.

In AWS the REST API requires an API key; API Gateway puts the key's id into the request
context (``identity.apiKeyId``), and that id is the tenant. Requests without a key (the local
cloud, S3 drops) belong to the ``default`` tenant. Each tenant's webhook secret is derived
from the deployment's signing secret, so no per-tenant state has to be stored or rotated
separately; a tenant reads its own with ``GET /api/webhook-secret``.
"""

from __future__ import annotations

import hashlib
import hmac
from contextvars import ContextVar
from typing import Any

from posterflow import config

DEFAULT_TENANT = "default"
_current: ContextVar[str] = ContextVar("posterflow_tenant", default=DEFAULT_TENANT)


def current() -> str:
    return _current.get()


def use(tenant: str | None) -> None:
    """Set the tenant of the request being handled (the API handler calls this per event)."""
    _current.set(tenant or DEFAULT_TENANT)


def from_event(event: dict[str, Any]) -> str:
    identity = (event.get("requestContext") or {}).get("identity") or {}
    return str(identity.get("apiKeyId") or DEFAULT_TENANT)


def webhook_secret(tenant: str | None) -> bytes:
    """The HMAC key of ``X-Posterflow-Signature`` for this tenant's webhooks (hex, as bytes)."""
    derived = hmac.new(config.signing_secret(), f"webhook:{tenant or DEFAULT_TENANT}".encode(), hashlib.sha256)
    return derived.hexdigest().encode()
