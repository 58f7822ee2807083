"""Messages that exhausted their retries: record each item as failed so its job still completes.

Every work message carries ``job_id`` and ``item_id``; a message without them (an S3 upload
event from the split queue, say) is logged with its body so nothing disappears silently.
Each message is handled alone (:func:`posterflow.jobs.sqs_batch.each_record`); one whose item
could not be recorded stays on its dead-letter queue for another try.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from posterflow import jobs, observability
from posterflow.errors import Reason
from posterflow.jobs import sqs_batch

logger = Logger(child=True)


def sweep(older_than_s: float, job_ids: list[str] | None = None) -> dict[str, Any]:
    """The scheduled sweep: stalled jobs get their outstanding items failed with a reason."""
    swept = jobs.sweep_stalled(older_than_s, job_ids=job_ids)
    if swept:
        logger.warning("swept stalled jobs", extra={"jobs": swept})
    return {"swept": swept}


def handle(event: dict[str, Any]) -> dict[str, Any]:
    return sqs_batch.each_record(event, record_dead_letter)


def record_dead_letter(record: SQSRecord) -> None:
    """Fail the message's item with the reason. Raises (the message is left on the dead-letter
    queue for another try) only when recording failed; a message naming no item is logged and
    dropped, as one naming an unknown job or item."""
    raw = record.raw_event  # the fields read with defaults: a hand-made event may lack them
    receives = raw.get("attributes", {}).get("ApproximateReceiveCount", "?")
    source = raw.get("eventSourceARN", "").rsplit(":", 1)[-1]
    try:
        body = json.loads(raw["body"])
    except (json.JSONDecodeError, TypeError):
        logger.error("unparsable message in a dead-letter queue", extra={"queue": source, "body": raw["body"]})
        return
    job_id, item_id = _item_of(body)
    if not job_id or item_id is None:
        logger.error("dead-letter message without an item", extra={"queue": source, "body": body})
        if job_id:
            jobs.add_log(job_id, "ERROR", "a work message exhausted its retries", {"queue": source})
        return
    reason = f"gave up after {receives} deliveries: the worker failed on every attempt (queue {source})"
    try:
        outcome = jobs.finish_item(job_id, item_id, status="failed", error=reason, error_code=Reason.RETRIES_EXHAUSTED)
        if outcome.counted:
            observability.add(observability.Metric.ITEMS_DEAD_LETTERED, 1)
            jobs.add_log(job_id, "ERROR", f"item {item_id} failed: {reason}",
                         {"source": "dlq", "items": [{"item_id": item_id, "error_code": Reason.RETRIES_EXHAUSTED.code,
                                                      "error": reason}]})
    except (jobs.JobNotFound, jobs.ItemNotFound):
        logger.warning("dead-letter message for an unknown job or item", extra={"body": body})
    except Exception:
        logger.exception("recording a dead-letter item failed", extra={"job_id": job_id, "item_id": item_id})
        raise


def _item_of(body: Any) -> tuple[str | None, int | None]:
    """The job and item a work message names, or ``None`` for what it lacks. A body that is not
    an object, or an item id that is not a number, names no item: no delivery can change that."""
    if not isinstance(body, dict):
        return None, None
    job_id, item_id = body.get("job_id"), body.get("item_id")
    try:
        return (str(job_id) if job_id else None), (None if item_id is None else int(item_id))
    except (TypeError, ValueError):
        return (str(job_id) if job_id else None), None
