"""The render worker's logic: SQS batches of poster items and the synchronous direct invoke.

Item outcomes are recorded in the job (exactly-once counters); input problems fail the item
with a reason; retryable problems (a crashed browser, AWS errors) are reported as batch item
failures so SQS redelivers them and, after ``maxReceiveCount``, the DLQ consumer records them.
The batch reaches :func:`render_batch` parsed, through :func:`posterflow.jobs.sqs_batch.whole_batch`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ValidationError

from posterflow import jobs, observability, tenancy
from posterflow.errors import Reason
from posterflow.jobs import sqs_batch
from posterflow.posters import template_store
from posterflow.posters.pipeline import PosterError, PosterOutput, PosterSpec, PosterWork, render_posters

logger = Logger(child=True)


class PosterMessage(BaseModel):
    job_id: str
    item_id: int
    spec: PosterSpec


def handle_sqs(event: dict[str, Any]) -> dict[str, Any]:
    return sqs_batch.whole_batch(event, PosterMessage, render_batch, what="render")


def render_batch(batch: list[sqs_batch.Received[PosterMessage]]) -> list[str]:
    """Render a batch's posters in parallel and record their outcomes; the ids of the
    messages to redeliver."""
    work: list[PosterWork] = []
    message_ids: list[str] = []
    sent_at_ms: dict[str, int | None] = {}
    owners: dict[str, jobs.Job | None] = {}  # one look-up per job per batch: tenant, cancelled
    for received in batch:
        msg = received.message
        if msg.job_id not in owners:
            owners[msg.job_id] = jobs.find_job(msg.job_id)
        job = owners[msg.job_id]
        if job is None:
            # Expired or never was: no item to record, and redelivery cannot change that.
            logger.warning("dropping a render message of an unknown job", extra={"job_id": msg.job_id})
            continue
        if job.status == jobs.JobStatus.CANCELLED:
            jobs.finish_item(msg.job_id, msg.item_id, status="cancelled", error="job cancelled",
                             error_code=Reason.CANCELLED)
            continue
        work.append(PosterWork(msg.spec, msg.job_id, msg.item_id, job.tenant))
        message_ids.append(received.message_id)
        sent_at_ms[received.message_id] = received.sent_at_ms
    if not work:
        return []
    outcomes = render_posters(work)

    # Outcomes are recorded in message order (the progress stream then announces items in the
    # order their counters moved), one transaction per job for the batch; a retryable problem
    # leaves its message for redelivery.
    redeliver = record_outcomes(work, message_ids, outcomes)
    left = set(redeliver)
    for one, message_id, outcome in zip(work, message_ids, outcomes, strict=True):
        if message_id not in left:
            observe(one.spec, outcome)
            observability.queue_to_done(sent_at_ms.get(message_id))
    return redeliver


def observe(spec: PosterSpec, outcome: PosterOutput | PosterError) -> None:
    """The poster's metrics (a retryable failure is no outcome yet: it comes back)."""
    if isinstance(outcome, PosterError) and outcome.retryable:
        return
    try:
        section: str | None = template_store.parse_template_id(spec.template_id)[0]
    except template_store.InvalidTemplateId:
        section = None
    if isinstance(outcome, PosterOutput):
        observability.poster(succeeded=True, section=section, render_ms=outcome.generation_time_ms)
    else:
        observability.poster(succeeded=False, section=section)


def record_outcomes(work: list[PosterWork], message_ids: list[str],
                    outcomes: list[PosterOutput | PosterError]) -> list[str]:
    """Record the batch's outcomes; the ids of the messages to redeliver."""
    redeliver: list[str] = []
    entries: list[tuple[str, jobs.ItemOutcome, str]] = []
    for one, message_id, outcome in zip(work, message_ids, outcomes, strict=True):
        job_id, item_id = one.job_id, one.item_id
        if isinstance(outcome, PosterOutput):
            recorded = jobs.ItemOutcome(item_id=item_id, status=jobs.ItemStatus.SUCCEEDED, output_key=outcome.key,
                                        timings={"total_ms": outcome.generation_time_ms},
                                        extra={"template_version": outcome.template_version_used})
        elif outcome.retryable:
            redeliver.append(message_id)
            continue
        else:
            recorded = jobs.ItemOutcome.failure(item_id, outcome)
        if one.spec.entity_id:
            recorded = recorded.model_copy(update={"entity_id": str(one.spec.entity_id)[:200]})
        entries.append((job_id, recorded, message_id))
    redeliver.extend(jobs.finish_batch(entries, source="render"))
    return redeliver


def handle_inline(event: dict[str, Any]) -> dict[str, Any]:
    """A chunk of an inline batch (``POST /api/generate-batch`` with ``mode`` sync/auto):
    ``{"inline": {"job_id", "items": [{"item_id", "spec"}]}}``, rendered and recorded exactly as
    an SQS batch is (the job's tenant, the cancel check, one counting write); answers the ids of
    the items it could not record (retryable problems), which the API queues."""
    inline = event["inline"]
    job_id = str(inline["job_id"])
    batch = [sqs_batch.Received(message_id=str(int(x["item_id"])),
                                message=PosterMessage(job_id=job_id, item_id=int(x["item_id"]), spec=x["spec"]))
             for x in inline["items"]]
    return {"ok": True, "unrecorded": [int(m) for m in render_batch(batch)]}


def handle_direct(event: dict[str, Any]) -> dict[str, Any]:
    """Synchronous render for ``POST /api/generate``: ``{"spec": {...}, "tenant": ...}`` →
    output or error. The API passes the caller's tenant (only it can invoke this function)."""
    if "inline" in event:
        return handle_inline(event)
    try:
        spec = PosterSpec.model_validate(event.get("spec") or {})
    except ValidationError as exc:
        invalid = PosterError(Reason.INVALID_REQUEST, "invalid poster spec", json.loads(exc.json()))
        return {"ok": False, "error": invalid.as_dict()}
    job_id = str(event.get("job_id") or f"sync-{uuid.uuid4().hex}")
    tenant = tenancy.normalise(str(event.get("tenant") or "") or None)
    (outcome,) = render_posters([PosterWork(spec, job_id, int(event.get("item_id", 0)), tenant)])
    observe(spec, outcome)
    if isinstance(outcome, PosterError):
        return {"ok": False, "error": outcome.as_dict()}
    return {"ok": True, "output": outcome.model_dump()}
