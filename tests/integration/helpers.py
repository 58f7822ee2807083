"""Small helpers for integration tests on the local cloud."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from posterflow import aws


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1,
             what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def make_queue(visibility_s: int = 1, max_receive: int = 3) -> tuple[str, str]:
    """A fresh queue + DLQ for one test; returns (queue_url, dlq_url)."""
    sqs = aws.client("sqs")
    name = f"t-{uuid.uuid4().hex[:10]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": str(visibility_s),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)}),
    })["QueueUrl"]
    return url, dlq


def drain(queue_url: str) -> list[dict[str, Any]]:
    msgs = aws.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return list(msgs.get("Messages", []))


def api(cloud: Any, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
    """One HTTP call to the local REST API; returns (status, parsed JSON or bytes, headers)."""
    import urllib.error
    import urllib.request

    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(f"{cloud.gateway.rest_url}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            status, payload, hdrs = resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        status, payload, hdrs = exc.code, exc.read(), dict(exc.headers)
    if hdrs.get("Content-Type", "").startswith("application/json"):
        return status, json.loads(payload), hdrs
    return status, payload, hdrs


def upload_card_template(cloud: Any, prefix: str, html: str, *, name: str = "Test card") -> str:
    """Upload a small 200x100 JPEG template in a fresh section; returns its ``{section}_latest`` id."""
    section = f"{prefix}-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": name, "format": "jpeg", "width": 200, "height": 100, "html_content": html})
    assert status == 201, body
    return f"{section}_latest"


def fetch(url: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as resp:
        return bytes(resp.read())
