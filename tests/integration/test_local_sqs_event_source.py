"""SQS event-source mapping: retries, partial batch failures, redrive to the DLQ."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from posterflow import aws
from tests.integration.helpers import drain, make_queue, wait_for


def test_retry_partial_failures_and_dlq(cloud: Any) -> None:
    url, dlq = make_queue(visibility_s=1, max_receive=3)
    deliveries: Counter[str] = Counter()
    succeeded: list[str] = []
    lock = threading.Lock()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        failures = []
        for record in event["Records"]:
            body = record["body"]
            with lock:
                deliveries[body] += 1
                n = deliveries[body]
            assert record["eventSource"] == "aws:sqs"
            assert int(record["attributes"]["ApproximateReceiveCount"]) == n
            if body == "poison" or (body == "flaky" and n < 3):
                failures.append({"itemIdentifier": record["messageId"]})
            else:
                with lock:
                    succeeded.append(body)
        return {"batchItemFailures": failures}

    name = f"fn-{url.rsplit('/', 1)[1]}"
    cloud.register_function(name, handler)
    cloud.add_sqs_source(url, name, batch_size=10, concurrency=1)
    sqs = aws.client("sqs")
    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "MessageBody": body} for i, body in enumerate(["ok-1", "flaky", "poison", "ok-2"])
    ])

    wait_for(lambda: "flaky" in succeeded, timeout=30, what="flaky message to succeed")
    # The poison message is received 3 times (maxReceiveCount) and then moved to the DLQ.
    dead = wait_for(lambda: drain(dlq), timeout=30, what="poison message in the DLQ")
    assert [m["Body"] for m in dead] == ["poison"]
    assert deliveries["flaky"] == 3
    assert deliveries["poison"] == 3
    # Successful records were deleted after their first delivery: never seen again.
    assert deliveries["ok-1"] == 1 and deliveries["ok-2"] == 1
    assert sorted(succeeded) == ["flaky", "ok-1", "ok-2"]


def test_function_error_leaves_whole_batch_for_redelivery(cloud: Any) -> None:
    url, _ = make_queue(visibility_s=1, max_receive=5)
    calls: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        calls.append(len(event["Records"]))
        if len(calls) == 1:
            raise RuntimeError("boom")

    name = f"fn-{url.rsplit('/', 1)[1]}"
    cloud.register_function(name, handler)
    sqs = aws.client("sqs")
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(3)])
    cloud.add_sqs_source(url, name, batch_size=10, concurrency=1)
    wait_for(lambda: sum(calls[1:]) >= 3, timeout=30, what="redelivery of the failed batch")
    assert calls[0] == 3
    wait_for(lambda: int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"][
        "ApproximateNumberOfMessagesNotVisible"]) == 0, timeout=10, what="queue to empty")
