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
