"""Event-source mappings of the local cloud: SQS pollers and the DynamoDB stream poller.

They behave as Lambda's pollers do: SQS batches of up to ``batch_size`` records in the real
event shape; a function error leaves the whole batch for redelivery after the visibility
timeout; ``batchItemFailures`` deletes only the successful records; the queue's redrive
policy moves a message to its DLQ after ``maxReceiveCount`` receives.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from posterflow import aws
from posterflow_local.lambda_runtime import InvokeResult, LocalFunction

log = logging.getLogger("posterflow.local.events")


@dataclass
class PollerStats:
    batches: int = 0
    records: int = 0
    failed_records: int = 0
    function_errors: int = 0


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of an SQS event, as Lambda builds it from a received message."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def failed_message_ids(result: InvokeResult, batch_ids: list[str]) -> set[str]:
    """Which records of a batch to leave on the queue, per Lambda's ReportBatchItemFailures rules."""
    if result.failed:
        return set(batch_ids)
    payload = result.payload
    if not isinstance(payload, dict) or not payload.get("batchItemFailures"):
        return set()
    failures: set[str] = set()
    for entry in payload["batchItemFailures"]:
        ident = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if not ident or ident not in batch_ids:
            # An unusable identifier makes Lambda treat the whole batch as failed.
            return set(batch_ids)
        failures.add(ident)
    return failures


@dataclass
class SqsPoller:
    queue_url: str
    function: LocalFunction
    batch_size: int = 10
    concurrency: int = 1
    wait_time_s: int = 1
    stats: PollerStats = field(default_factory=PollerStats)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _stats_lock: threading.Lock = field(default_factory=threading.Lock)
    _idle_workers: int = 0
    # Fault injection (posterflow_local.faults): sees the ids about to be left on the queue
    # and answers the ids to leave.
    hook: Callable[[str, Any, str, list[dict[str, Any]], set[str]], set[str]] | None = None

    def start(self) -> None:
        sqs = aws.client("sqs")
        self._queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        for n in range(self.concurrency):
            t = threading.Thread(target=self._run, name=f"sqs-{self.function.name}-{n}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.wait_time_s + 5)

    def _run(self) -> None:
        sqs = aws.client("sqs")
        region = aws.region()
        while not self._stop.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=self.batch_size,
                    WaitTimeSeconds=self.wait_time_s,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("receive from %s failed", self.queue_url)
                time.sleep(0.5)
                continue
            if not messages:
                continue
            self.handle_batch(sqs, messages, region)

    def handle_batch(self, sqs: Any, messages: list[dict[str, Any]], region: str) -> None:
        records = [sqs_record(m, self._queue_arn, region) for m in messages]
        result = self.function.invoke({"Records": records})
        ids = [r["messageId"] for r in records]
        failed = failed_message_ids(result, ids)
        if self.hook is not None:
            failed = self.hook(self.function.name, sqs, self.queue_url, records, failed)
        if result.failed:
            log.warning("%s failed a batch of %d: %s: %s", self.function.name, len(ids), result.error_type,
                        result.error_message)
        done = [r for r in records if r["messageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start:start + 10]
            sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)],
            )
        with self._stats_lock:
            self.stats.batches += 1
            self.stats.records += len(records)
            self.stats.failed_records += len(failed)
            self.stats.function_errors += int(result.failed)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray):
        import base64

        return base64.b64encode(value).decode()
    return value


@dataclass
class DynamoStreamPoller:
    """Polls every shard of a table's stream and invokes the function with stream records."""

    table_name: str
    function: LocalFunction
    batch_size: int = 100
    # Lambda reads each shard of a DynamoDB stream four times a second; between reads the
    # records gather into one batch (one invoke) instead of one invoke per write.
    poll_interval_s: float = 0.25
    describe_interval_s: float = 10.0
    on_error: Callable[[InvokeResult], None] | None = None
    stats: PollerStats = field(default_factory=PollerStats)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        desc = aws.client("dynamodb").describe_table(TableName=self.table_name)["Table"]
        self._stream_arn = desc["LatestStreamArn"]
        self._thread = threading.Thread(target=self._run, name=f"stream-{self.function.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        streams = aws.client("dynamodbstreams")
        iterators: dict[str, str | None] = {}
        # Like Lambda's checkpoint: a shard whose iterator fails is re-read after the last
        # record delivered, so a lost iterator never loses records.
        last_seq: dict[str, str] = {}

        def fresh_iterator(sid: str) -> str:
            args: dict[str, Any] = {"StreamArn": self._stream_arn, "ShardId": sid}
            if sid in last_seq:
                args.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=last_seq[sid])
            else:
                args["ShardIteratorType"] = "TRIM_HORIZON"
            return str(streams.get_shard_iterator(**args)["ShardIterator"])

        described_at = float("-inf")
        while not self._stop.is_set():
            if time.monotonic() - described_at >= self.describe_interval_s or not iterators:
                try:
                    shards = streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]["Shards"]
                    for shard in shards:
                        if shard["ShardId"] not in iterators:
                            iterators[shard["ShardId"]] = fresh_iterator(shard["ShardId"])
                    described_at = time.monotonic()
                except Exception:
                    if self._stop.is_set():
                        return
                    log.exception("describing the stream of %s failed", self.table_name)
                    self._stop.wait(0.5)
                    continue
            full_batch = False
            for sid, iterator in list(iterators.items()):
                if iterator is None:
                    continue
                try:
                    resp = streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
                except Exception:
                    if self._stop.is_set():
                        return
                    log.warning("stream iterator of %s/%s failed; resuming after the last record", self.table_name,
                                sid, exc_info=True)
                    try:
                        iterators[sid] = fresh_iterator(sid)
                    except Exception:
                        self._stop.wait(0.5)  # the stream itself is unavailable: try again
                    continue
                iterators[sid] = resp.get("NextShardIterator")
                records = resp.get("Records", [])
                if records:
                    full_batch = full_batch or len(records) >= self.batch_size
                    self._deliver(records)
                    last_seq[sid] = records[-1]["dynamodb"]["SequenceNumber"]
            if not full_batch:  # a full batch means more are waiting: read again at once
                self._stop.wait(self.poll_interval_s)

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        event_records = []
        for rec in records:
            item = _jsonable(rec)
            item.setdefault("eventSourceARN", self._stream_arn)
            event_records.append(item)
        # Lambda retries a failed stream batch until it succeeds or the records expire; the
        # local cloud retries a few times and then moves on, logging the loss loudly.
        for attempt in range(3):
            result = self.function.invoke({"Records": event_records})
            if not result.failed:
                break
            log.warning("%s failed a stream batch (attempt %d): %s", self.function.name, attempt + 1,
                        result.error_message)
            if self.on_error:
                self.on_error(result)
        self.stats.batches += 1
        self.stats.records += len(records)
