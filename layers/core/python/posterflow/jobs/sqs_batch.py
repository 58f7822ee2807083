"""The SQS consumers' batches: one runner for each way a consumer handles its messages, and the
one place that builds Lambda's partial batch response (``batchItemFailures``).

- :func:`each_record`: every record alone (the splitter, the DLQ consumer), through Powertools'
  batch utility. The consumer's handler drops a malformed message by returning (it can never
  succeed, so it must not come back) and fails its record by raising.
- :func:`whole_batch`: the worker sees the whole batch at once (render renders it in parallel,
  crop reads a batch's ZIP entries together; both record the outcomes with one
  ``jobs.finish_batch``). Each body is parsed into the worker's message model here; a body that
  does not parse is logged and dropped; the worker answers the message ids to redeliver.

Either way a failed message is left on the queue: SQS delivers it again after the visibility
timeout and, after ``maxReceiveCount``, moves it to the dead-letter queue, whose consumer
records the item as failed (:mod:`posterflow.jobs.dlq`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSEvent, SQSRecord
from pydantic import BaseModel, ValidationError

logger = Logger(child=True)

M = TypeVar("M", bound=BaseModel)

# How much of a dropped body a log line keeps: enough to find the sender, not a whole payload.
LOGGED_BODY_CHARS = 500


@dataclass(frozen=True, slots=True)
class Received(Generic[M]):
    """One message of a batch, parsed: what the worker works on and how it names it back."""

    message_id: str
    message: M
    sent_at_ms: int | None = None
    """When the message was first sent (SQS ``SentTimestamp``, epoch ms): the item's enqueue time."""


def response(message_ids: Iterable[str]) -> dict[str, Any]:
    """Lambda's partial batch response leaving ``message_ids`` on the queue (each once, in order)."""
    return {"batchItemFailures": [{"itemIdentifier": m} for m in dict.fromkeys(message_ids)]}


def each_record(event: dict[str, Any], handle: Callable[[SQSRecord], None]) -> dict[str, Any]:
    """Run ``handle`` on every record of an SQS event; a record whose handler raises is left
    for redelivery, the others are deleted."""
    if not event.get("Records"):
        # Powertools refuses an event without records; there is nothing to leave on a queue.
        return response([])
    # A processor holds the state of the batch it runs, so one per call: the local cloud runs
    # a function's instances as threads of one process.
    # raise_on_entire_batch_failure=False: a batch whose every record failed answers with all of
    # them as failures, as one with some failed does, rather than failing the invocation.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    def record_handler(record: SQSRecord) -> None:  # Powertools passes the record as ``record=``
        handle(record)

    return dict(process_partial_response(event=event, record_handler=record_handler, processor=processor))


def _sent_at_ms(record: SQSRecord) -> int | None:
    value = str((record.raw_event.get("attributes") or {}).get("SentTimestamp") or "")
    return int(value) if value.isascii() and value.isdigit() else None


def whole_batch(event: dict[str, Any], model: type[M], worker: Callable[[list[Received[M]]], Iterable[str]],
                *, what: str) -> dict[str, Any]:
    """Parse every record's body into ``model`` and hand the batch to ``worker``, which answers
    the message ids to redeliver. ``what`` names the consumer in log lines.

    A body that does not parse is logged and dropped: it is no item, and no delivery can change
    that. If the worker raises, it has recorded an unknown part of the batch, so every message
    is left for redelivery (recording an outcome counts it exactly once, so a message whose
    item was already recorded comes back harmlessly)."""
    received: list[Received[M]] = []
    for record in SQSEvent(event).records if event.get("Records") else ():
        try:
            received.append(Received(record.message_id, model.model_validate_json(record.body),
                                     sent_at_ms=_sent_at_ms(record)))
        except ValidationError as exc:
            logger.error(f"dropping malformed {what} message",
                         extra={"error": str(exc), "body": str(record.get("body"))[:LOGGED_BODY_CHARS]})
    if not received:
        return response([])
    try:
        redeliver = list(worker(received))
    except Exception:
        logger.exception(f"{what} batch failed; leaving every message for redelivery",
                         extra={"messages": len(received)})
        redeliver = [r.message_id for r in received]
    return response(redeliver)
