"""Webhooks are signed with the submitting tenant's own secret (one per API key)."""

from __future__ import annotations

from typing import Any

import pytest

from posterflow import tokens
from tests.integration.helpers import api
from tests.integration.test_finalize_workflow import HTML, OUT, Receiver, receiver, wait_finalized

__all__ = ["receiver"]  # a fixture shared with the finalize tests


def _secret(cloud: Any, key: str) -> bytes:
    status, body, _ = api(cloud, "GET", "/api/webhook-secret", headers={"x-api-key": key})
    assert status == 200 and body["header"] == "X-Posterflow-Signature"
    return str(body["secret"]).encode()


def test_each_tenant_verifies_only_its_own_webhooks(cloud: Any, receiver: Receiver) -> None:
    secret_a, secret_b = _secret(cloud, "tenant-a-key"), _secret(cloud, "tenant-b-key")
    assert secret_a != secret_b
    status, body, _ = api(cloud, "POST", "/api/templates/upload",
                          {"section": "fin-tenants", "name": "Finalize", "html_content": HTML},
                          headers={"x-api-key": "tenant-a-key"})  # templates are per tenant too
    assert status == 201, body
    template_id = str(body["template_id"])
    status, body, _ = api(cloud, "POST", "/api/generate-batch",
                          {"template_id": template_id, "items": [{"name": "A"}], **OUT,
                           "webhook_url": f"{receiver.url}/tenant-a"},
                          headers={"x-api-key": "tenant-a-key"})
    assert status == 202, body
    wait_finalized(body["job_id"])
    (headers, payload), = receiver.posts("/tenant-a")
    signature = headers["X-Posterflow-Signature"]
    tokens.verify_webhook_signature(payload, signature, secret=secret_a)
    with pytest.raises(tokens.TokenError):
        tokens.verify_webhook_signature(payload, signature, secret=secret_b)
