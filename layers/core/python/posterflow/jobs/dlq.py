"""Messages that exhausted their retries: record each item as failed so its job still completes.

Every work message carries ``job_id`` and ``item_id``; a message without them (an S3 upload
event from the split queue, say) is logged with its body so nothing disappears silently.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger

from posterflow import jobs

logger = Logger(child=True)


def sweep(older_than_s: float, job_ids: list[str] | None = None) -> dict[str, Any]:
    """The scheduled sweep: stalled jobs get their outstanding items failed with a reason."""
    swept = jobs.sweep_stalled(older_than_s, job_ids=job_ids)
    if swept:
        logger.warning("swept stalled jobs", extra={"jobs": swept})
    return {"swept": swept}


def handle(event: dict[str, Any]) -> dict[str, Any]:
    failures: list[dict[str, str]] = []
    for record in event.get("Records", []):
        receives = record.get("attributes", {}).get("ApproximateReceiveCount", "?")
        source = record.get("eventSourceARN", "").rsplit(":", 1)[-1]
        try:
            body = json.loads(record["body"])
        except (json.JSONDecodeError, TypeError):
            logger.error("unparsable message in a dead-letter queue", extra={"queue": source, "body": record["body"]})
            continue
        job_id, item_id = body.get("job_id"), body.get("item_id")
        if not job_id or item_id is None:
            logger.error("dead-letter message without an item", extra={"queue": source, "body": body})
            if job_id:
                jobs.add_log(job_id, "ERROR", "a work message exhausted its retries", {"queue": source})
            continue
        reason = f"gave up after {receives} deliveries: the worker failed on every attempt (queue {source})"
        try:
            outcome = jobs.finish_item(job_id, int(item_id), status="failed", error=reason)
            if outcome.counted:
                jobs.add_log(job_id, "ERROR", f"item {item_id} failed: {reason}")
        except (jobs.JobNotFound, jobs.ItemNotFound):
            logger.warning("dead-letter message for an unknown job or item", extra={"body": body})
        except Exception:
            logger.exception("recording a dead-letter item failed", extra={"job_id": job_id, "item_id": item_id})
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
