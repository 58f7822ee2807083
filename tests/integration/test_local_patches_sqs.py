"""SQS on the local cloud answers what moto's own code answers: the same calls (send, receive,
delete, change visibility, approximate counts, redrive to the DLQ, purge), on a queue with
the patch and on one with moto's code, give the same observable results."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from posterflow import aws

# The patched counts are reused for 100 ms (SQS's counts are approximate on AWS too).
COUNTS_SETTLE_S = 0.15


def _queues(max_receive: int) -> tuple[str, str]:
    sqs = aws.client("sqs")
    name = f"pq-{uuid.uuid4().hex[:10]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": "30",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)}),
    })["QueueUrl"]
    return url, dlq


class _Log:
    """What a client could observe, without the random parts (ids, receipt handles, times)."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def call(self, label: str, fn: Callable[[], Any]) -> Any:
        """``fn()``, or None with the error code logged."""
        try:
            return fn()
        except ClientError as exc:
            self.seen.append((label, "error", exc.response["Error"]["Code"]))
            return None

    def received(self, label: str, response: dict[str, Any] | None) -> list[dict[str, Any]]:
        messages = list((response or {}).get("Messages", []))
        self.seen.append((label, [(m["Body"], m.get("Attributes", {}).get("ApproximateReceiveCount"),
                                   sorted(m.get("MessageAttributes", {}))) for m in messages]))
        return messages

    def counts(self, label: str, url: str) -> None:
        time.sleep(COUNTS_SETTLE_S)
        attributes = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        self.seen.append((label, attributes))


def _scenario() -> list[Any]:
    sqs = aws.client("sqs")
    url, dlq = _queues(max_receive=2)
    log = _Log()

    def receive(label: str, count: int = 10, visibility: int = 30, queue: str = url) -> list[dict[str, Any]]:
        return log.received(label, log.call(label, lambda: sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=count, VisibilityTimeout=visibility, WaitTimeSeconds=0,
            AttributeNames=["ApproximateReceiveCount"], MessageAttributeNames=["keep"])))

    def delete(label: str, handle: str) -> None:
        if log.call(label, lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)) is not None:
            log.seen.append((label, "ok"))

    def change(label: str, handle: str, seconds: int) -> None:
        if log.call(label, lambda: sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=seconds)) is not None:
            log.seen.append((label, "ok"))

    for i in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}", MessageAttributes={
            "keep": {"DataType": "String", "StringValue": "k"}, "drop": {"DataType": "String", "StringValue": "d"}})
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    log.counts("sent", url)

    first = receive("receive two", count=2)
    log.counts("two in flight", url)
    delete("delete", first[0]["ReceiptHandle"])
    delete("delete again", first[0]["ReceiptHandle"])
    delete("delete an unknown handle", "not-a-receipt-handle")
    change("change a deleted message", first[0]["ReceiptHandle"], 0)
    change("change an unknown handle", "not-a-receipt-handle", 0)
    change("make one visible again", first[1]["ReceiptHandle"], 0)
    log.counts("one back", url)
    change("hide it again", first[1]["ReceiptHandle"], 30)

    # Received twice with no visibility timeout: the next receive moves them to the DLQ.
    again = receive("receive the rest", visibility=0)
    receive("receive them a second time", visibility=0)
    receive("redrive", visibility=0)
    log.counts("after redrive", url)
    log.counts("dlq", dlq)
    moved = receive("receive from the DLQ", queue=dlq)
    batch = log.call("batch delete", lambda: sqs.delete_message_batch(QueueUrl=dlq, Entries=[
        {"Id": "ok", "ReceiptHandle": moved[0]["ReceiptHandle"]},
        {"Id": "bad", "ReceiptHandle": "not-a-receipt-handle"}]))
    log.seen.append(("batch delete", [x["Id"] for x in batch.get("Successful", [])],
                     [(x["Id"], x["Code"]) for x in batch.get("Failed", [])]))
    delete("delete a handle of a message now in the DLQ", again[0]["ReceiptHandle"])
    log.counts("dlq after delete", dlq)

    sqs.send_message(QueueUrl=url, MessageBody="purged")
    held = receive("receive before purge")
    sqs.purge_queue(QueueUrl=url)
    log.counts("purged", url)
    delete("delete after purge", held[0]["ReceiptHandle"])
    receive("receive after purge")
    return log.seen


@pytest.fixture
def moto_sqs(cloud: object) -> Iterator[None]:
    """moto's own SQS code for the duration of a test, then the patch again."""
    from posterflow_local.patches import sqs

    with sqs.PATCH.removed():
        yield


def test_same_results_as_moto(cloud: object, request: pytest.FixtureRequest) -> None:
    from moto.sqs.models import SQSBackend

    from posterflow_local.patches import sqs

    assert SQSBackend.receive_message is sqs._receive_message  # the patch is what runs first
    patched = _scenario()
    request.getfixturevalue("moto_sqs")
    assert SQSBackend.receive_message is sqs._original_receive
    reference = _scenario()
    assert patched == reference
    # The scenario reached what it is about.
    flat = json.dumps(reference)
    assert "ReceiptHandleIsInvalid" in flat and '"redrive"' in flat
    assert ["receive from the DLQ", [["m2", "3", ["keep"]], ["m3", "3", ["keep"]], ["m4", "3", ["keep"]]]] \
        in json.loads(flat)
    assert ["delete after purge", "error", "ReceiptHandleIsInvalid"] in json.loads(flat)
    assert ["change a deleted message", "error", "ReceiptHandleIsInvalid"] in json.loads(flat)


def test_removing_the_patch_hands_deleted_messages_back(cloud: object) -> None:
    """A message deleted under the patch is gone for moto's own code too (deletes are lazy)."""
    from posterflow_local.patches import sqs as patch

    sqs = aws.client("sqs")
    url, _ = _queues(max_receive=5)
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"d{i}")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    with patch.PATCH.removed():
        left = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
        assert sorted(m["Body"] for m in left) == ["d1", "d2"]
    # And a message received by moto's code can be deleted under the patch.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=left[0]["ReceiptHandle"])
    rest = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    assert [m["Body"] for m in rest] == [b for b in ("d1", "d2") if b != left[0]["Body"]]
