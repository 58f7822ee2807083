"""The SQS consumers' batch runners (``posterflow.jobs.sqs_batch``) and the two consumers that
handle each record alone (splitter, DLQ): which messages a partial batch response leaves on
the queue. A malformed message is dropped with a log line, never left to come back; a failed
one is left, and only it; a whole-batch worker that raises leaves its whole batch."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from posterflow import jobs
from posterflow.jobs import dlq, sqs_batch
from posterflow.split import runner


class Work(BaseModel):
    job_id: str
    item_id: int


class Log:
    """Stands in for a module's logger: the lines it was asked to write, by level."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def _line(self, level: str) -> Any:
        return lambda msg, *args, **kwargs: self.lines.append((level, msg))

    def __getattr__(self, level: str) -> Any:
        return self._line(level)


def record(message_id: str, body: Any) -> dict[str, Any]:
    """An SQS record as Lambda delivers it; ``body`` is JSON-encoded unless it is a string."""
    return {"messageId": message_id, "receiptHandle": f"rh-{message_id}",
            "body": body if isinstance(body, str) else json.dumps(body),
            "attributes": {"ApproximateReceiveCount": "4", "SentTimestamp": "1700000000000"},
            "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:posterflow-render-dlq", "awsRegion": "us-east-1"}


def event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def failed(answer: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in answer["batchItemFailures"]]


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> Log:
    found = Log()
    monkeypatch.setattr(sqs_batch, "logger", found)
    return found


# ---- whole_batch: the render and crop workers ------------------------------------------------

def test_whole_batch_drops_malformed_bodies_and_hands_the_worker_the_parsed_rest(log: Log) -> None:
    seen: list[list[tuple[str, Work]]] = []

    def worker(batch: list[sqs_batch.Received[Work]]) -> list[str]:
        seen.append([(r.message_id, r.message) for r in batch])
        return []

    answer = sqs_batch.whole_batch(event(
        record("a", {"job_id": "j", "item_id": 1}),
        record("b", "{not json"),
        record("c", {"job_id": "j"}),  # no item id
        record("d", [1, 2]),  # JSON, not an object
        record("e", {"job_id": "k", "item_id": "7"}),
    ), Work, worker, what="render")
    assert failed(answer) == []  # the malformed are not left to come back
    assert seen == [[("a", Work(job_id="j", item_id=1)), ("e", Work(job_id="k", item_id=7))]]
    assert [line for line in log.lines if line[0] == "error"] == [("error", "dropping malformed render message")] * 3


def test_whole_batch_leaves_exactly_the_messages_the_worker_names(log: Log) -> None:
    def worker(batch: list[sqs_batch.Received[Work]]) -> list[str]:
        # Retryable outcomes and unrecorded ones, reported in the worker's order (one twice).
        return [r.message_id for r in batch if r.message.item_id % 2] + ["m3"]

    records = [record(f"m{i}", {"job_id": "j", "item_id": i}) for i in range(6)]
    answer = sqs_batch.whole_batch(event(*records, record("bad", "")), Work, worker, what="crop")
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"},
                                            {"itemIdentifier": "m5"}]}


def test_whole_batch_leaves_every_parsed_message_when_the_worker_raises(log: Log) -> None:
    def worker(batch: list[sqs_batch.Received[Work]]) -> list[str]:
        raise RuntimeError("DynamoDB throttled the job look-up")

    answer = sqs_batch.whole_batch(event(
        record("a", {"job_id": "j", "item_id": 1}), record("poison", "]"), record("b", {"job_id": "j", "item_id": 2}),
    ), Work, worker, what="render")
    assert failed(answer) == ["a", "b"]  # SQS redelivers the batch; the malformed one stays dropped
    assert ("exception", "render batch failed; leaving every message for redelivery") in log.lines


def test_whole_batch_without_a_parsable_message_does_not_call_the_worker(log: Log) -> None:
    def worker(batch: list[sqs_batch.Received[Work]]) -> list[str]:
        raise AssertionError("called")

    assert sqs_batch.whole_batch(event(record("x", "nope")), Work, worker, what="crop") == {"batchItemFailures": []}
    assert sqs_batch.whole_batch({"Records": []}, Work, worker, what="crop") == {"batchItemFailures": []}


# ---- each_record: Powertools' batch processor ------------------------------------------------

def test_each_record_leaves_only_the_records_whose_handler_raised() -> None:
    handled: list[str] = []

    def handle(one: Any) -> None:
        handled.append(one.message_id)
        if json.loads(one.body)["fail"]:
            raise RuntimeError("failed")

    answer = sqs_batch.each_record(event(*(record(f"m{i}", {"fail": i in (1, 3)}) for i in range(4))), handle)
    assert failed(answer) == ["m1", "m3"] and handled == ["m0", "m1", "m2", "m3"]


def test_each_record_answers_a_batch_that_failed_entirely_and_an_empty_one() -> None:
    def handle(one: Any) -> None:
        raise RuntimeError("failed")

    # Not Powertools' BatchProcessingError: the answer names every message, as before.
    assert failed(sqs_batch.each_record(event(record("a", {}), record("b", {})), handle)) == ["a", "b"]
    assert sqs_batch.each_record({"Records": []}, handle) == {"batchItemFailures": []}
    assert sqs_batch.each_record({}, handle) == {"batchItemFailures": []}


# ---- the splitter ---------------------------------------------------------------------------

def test_splitter_drops_malformed_messages_and_leaves_failed_splits(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[str] = []

    def run(state: dict[str, Any], remaining_ms: Any) -> None:
        runs.append(state["job_id"])
        if state["job_id"] == "broken":
            raise RuntimeError("S3 throttled")

    monkeypatch.setattr(runner, "_run", run)
    monkeypatch.setattr(runner, "logger", Log())
    answer = runner.handle(event(
        record("ok", {"continue": {"job_id": "fine"}}),
        record("garbled", "{"),
        record("list", [1]),
        record("test", {"Service": "Amazon S3", "Event": "s3:TestEvent"}),
        record("fails", {"continue": {"job_id": "broken"}}),
        record("after", {"continue": {"job_id": "later"}}),
    ), lambda: 10**9)
    assert failed(answer) == ["fails"]
    assert runs == ["fine", "broken", "later"]


# ---- the DLQ consumer -------------------------------------------------------------------------

def test_dlq_fails_items_drops_messages_without_one_and_leaves_what_it_could_not_record(
        monkeypatch: pytest.MonkeyPatch) -> None:
    finished: list[tuple[str, int, str]] = []
    logged: list[tuple[str, str]] = []

    def finish_item(job_id: str, item_id: int, *, status: str, error: str, error_code: str) -> jobs.FinishOutcome:
        assert error_code == "retries_exhausted"
        if job_id == "throttled":
            raise RuntimeError("DynamoDB throttled")
        if job_id == "gone":
            raise jobs.JobNotFound(job_id)
        finished.append((job_id, item_id, error))
        return jobs.FinishOutcome(result=jobs.FinishResult.FINISHED, item_status=jobs.ItemStatus.FAILED)

    monkeypatch.setattr(jobs, "finish_item", finish_item)
    monkeypatch.setattr(jobs, "add_log", lambda job_id, level, message, *a, **k: logged.append((job_id, message)))
    monkeypatch.setattr(dlq, "logger", Log())
    answer = dlq.handle(event(
        record("one", {"job_id": "j", "item_id": 3, "spec": {}}),
        record("garbled", "not json"),
        record("list", [1]),
        record("upload", {"Records": [{"s3": {}}]}),  # an S3 event from the split queue's DLQ
        record("bad-id", {"job_id": "j", "item_id": "three"}),
        record("throttled", {"job_id": "throttled", "item_id": 1}),
        record("gone", {"job_id": "gone", "item_id": 1}),
    ))
    assert failed(answer) == ["throttled"]
    assert [(j, i) for j, i, _ in finished] == [("j", 3)]
    assert "gave up after 4 deliveries" in finished[0][2] and "posterflow-render-dlq" in finished[0][2]
    assert logged == [("j", "item 3 failed: " + finished[0][2]), ("j", "a work message exhausted its retries")]
