"""The render worker's logic: SQS batches of poster items and the synchronous direct invoke.

Item outcomes are recorded in the job (exactly-once counters); input problems fail the item
with a reason; retryable problems (a crashed browser, AWS errors) are reported as batch item
failures so SQS redelivers them and, after ``maxReceiveCount``, the DLQ consumer records them.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ValidationError

from posterflow import jobs, tenancy
from posterflow.posters.pipeline import PosterError, PosterOutput, PosterSpec, PosterWork, render_posters

logger = Logger(child=True)


class PosterMessage(BaseModel):
    job_id: str
    item_id: int
    spec: PosterSpec


def handle_sqs(event: dict[str, Any]) -> dict[str, Any]:
    failures: list[dict[str, str]] = []
    work: list[PosterWork] = []
    message_ids: list[str] = []
    owners: dict[str, jobs.Job | None] = {}  # one look-up per job per batch: tenant, cancelled
    for record in event.get("Records", []):
        try:
            msg = PosterMessage.model_validate_json(record["body"])
        except ValidationError as exc:
            # A malformed message can never succeed: log it and let it go (it is not an item).
            logger.error("dropping malformed render message", extra={"error": str(exc), "body": record["body"][:500]})
            continue
        if msg.job_id not in owners:
            owners[msg.job_id] = jobs.find_job(msg.job_id)
        job = owners[msg.job_id]
        if job is None:
            # Expired or never was: no item to record, and redelivery cannot change that.
            logger.warning("dropping a render message of an unknown job", extra={"job_id": msg.job_id})
            continue
        if job.status == jobs.JobStatus.CANCELLED:
            jobs.finish_item(msg.job_id, msg.item_id, status="cancelled", error="job cancelled")
            continue
        work.append(PosterWork(msg.spec, msg.job_id, msg.item_id, job.tenant))
        message_ids.append(record["messageId"])
    if not work:
        return {"batchItemFailures": failures}
    outcomes = render_posters(work)

    # Outcomes are recorded in message order (the progress stream then announces items in the
    # order their counters moved), one transaction per job for the batch; a retryable problem
    # leaves its message for redelivery.
    failures.extend(record_outcomes(work, message_ids, outcomes))
    return {"batchItemFailures": failures}


def record_outcomes(work: list[PosterWork], message_ids: list[str],
                    outcomes: list[PosterOutput | PosterError]) -> list[dict[str, str]]:
    """Record the batch's outcomes; the batch item failures for messages to redeliver."""
    failures: list[dict[str, str]] = []
    entries: list[tuple[str, jobs.ItemOutcome, str]] = []
    for one, message_id, outcome in zip(work, message_ids, outcomes, strict=True):
        job_id, item_id = one.job_id, one.item_id
        if isinstance(outcome, PosterOutput):
            recorded = jobs.ItemOutcome(item_id=item_id, status=jobs.ItemStatus.SUCCEEDED, output_key=outcome.key,
                                        timings={"total_ms": outcome.generation_time_ms},
                                        extra={"template_version": outcome.template_version_used})
        elif outcome.retryable:
            failures.append({"itemIdentifier": message_id})
            continue
        else:
            recorded = jobs.ItemOutcome(item_id=item_id, status=jobs.ItemStatus.FAILED,
                                        error=f"{outcome.code}: {outcome.message}")
        entries.append((job_id, recorded, message_id))
    failures.extend({"itemIdentifier": message_id} for message_id in jobs.finish_batch(entries))
    return failures


def handle_direct(event: dict[str, Any]) -> dict[str, Any]:
    """Synchronous render for ``POST /api/generate``: ``{"spec": {...}, "tenant": ...}`` →
    output or error. The API passes the caller's tenant (only it can invoke this function)."""
    try:
        spec = PosterSpec.model_validate(event.get("spec") or {})
    except ValidationError as exc:
        return {"ok": False, "error": {"code": "invalid_request", "message": "invalid poster spec",
                                       "details": json.loads(exc.json()), "status": 422}}
    job_id = str(event.get("job_id") or f"sync-{uuid.uuid4().hex}")
    tenant = tenancy.normalise(str(event.get("tenant") or "") or None)
    (outcome,) = render_posters([PosterWork(spec, job_id, int(event.get("item_id", 0)), tenant)])
    if isinstance(outcome, PosterError):
        return {"ok": False, "error": outcome.as_dict()}
    return {"ok": True, "output": outcome.model_dump()}
