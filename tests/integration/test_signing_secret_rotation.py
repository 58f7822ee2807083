"""Rotating the signing secret in (embedded) Secrets Manager: links minted before stay valid for
their lifetime, and webhooks carry a signature for both keys until receivers move over."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from posterflow import aws, config, jobs, signing_keys, tokens
from tests.integration.helpers import api
from tests.integration.test_finalize_workflow import Receiver, receiver, run_batch, template_id

__all__ = ["receiver", "template_id"]  # fixtures shared with the finalize tests


@pytest.fixture
def rotate(cloud: Any) -> Iterator[Any]:
    """Rotates once when called; puts the original value back as the current version after."""
    sm, arn = aws.client("secretsmanager"), os.environ[config.ENV_SIGNING_SECRET_ARN]
    original = sm.get_secret_value(SecretId=arn)["SecretString"]

    def rotate_now() -> None:
        sm.put_secret_value(SecretId=arn, SecretString=secrets.token_hex(32))
        signing_keys.clear_cache()  # as if the 5-minute cache had run out

    yield rotate_now
    sm.put_secret_value(SecretId=arn, SecretString=original)
    signing_keys.clear_cache()


def _webhook_secret(cloud: Any) -> bytes:
    status, body, _ = api(cloud, "GET", "/api/webhook-secret")
    assert status == 200, body
    return str(body["secret"]).encode()


def test_rotation_keeps_old_links_and_webhook_receivers_working(
    cloud: Any, template_id: str, receiver: Receiver, rotate: Any
) -> None:
    job = jobs.create_job("poster", total=1)
    old_link = tokens.download_token(job.job_id)
    old_webhook_secret = _webhook_secret(cloud)
    rotate()
    new_webhook_secret = _webhook_secret(cloud)
    assert new_webhook_secret != old_webhook_secret
    # The link signed with the previous version passes the token check (the archive is not there).
    status, body, _ = api(cloud, "GET", f"/api/jobs/{job.job_id}/download?token={old_link}")
    assert status == 409 and body["error"]["code"] == "archive_not_ready", body
    # A link nobody signed is still refused.
    status, body, _ = api(cloud, "GET", f"/api/jobs/{job.job_id}/download?token={old_link[:-4]}AAAA")
    assert status == 403, body
    run_batch(cloud, template_id, [{"name": "Rotated"}], webhook_url=f"{receiver.url}/rotated")
    ((headers, payload),) = receiver.posts("/rotated")
    signature = headers["X-Posterflow-Signature"]
    assert signature.count("v1=") == 2
    tokens.verify_webhook_signature(payload, signature, secret=new_webhook_secret)
    tokens.verify_webhook_signature(payload, signature, secret=old_webhook_secret)
