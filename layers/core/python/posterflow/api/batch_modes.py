"""``mode`` and ``merge_pdf`` of ``POST /api/generate-batch`` (seed 002: small batches answered at
once, one merged print PDF per job).

``mode``: ``async`` (the default) queues the items and answers 202, as always. ``auto`` renders
a batch of up to ``POSTERFLOW_SYNC_BATCH_MAX`` items inline and answers 200 with the job status
body and its ``results``; a larger one goes async. ``sync`` renders inline too, and refuses (422
``sync_batch_too_large``, naming the limit) a batch above it.

An inline batch is an ordinary job: its items are written first, then rendered through the
render function's synchronous entry point in parallel chunks
(:func:`posterflow.posters.worker.handle_inline`), which records each chunk's outcomes through
the same exactly-once counting as the SQS workers; finalize starts from the write that completes
the job, as ever. The API waits until a deadline well inside API Gateway's 29 s (the smaller of
``POSTERFLOW_SYNC_BATCH_DEADLINE_S`` and the API function's remaining time less
:data:`DEADLINE_MARGIN_S`). Whatever is still pending then (a chunk still rendering, not started,
or failed) is sent to the render queue and the answer is 202 with the job: the work goes on
asynchronously, never a 504. An item finished by both its inline chunk and its queue message
counts once (the counting write is conditioned on the item still being pending).

``merge_pdf: true`` (PDF output only: 422 ``merge_pdf_needs_pdf`` naming the format otherwise)
marks the job before any item is queued; finalize then writes the merged PDF
(:mod:`posterflow.finalize.merge_pdf`).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from posterflow import aws, config, jobs, tenancy
from posterflow.api import request
from posterflow.api.errors import ApiError
from posterflow.api.poster_requests import BatchRequest, Work
from posterflow.api.routes_jobs import job_json, result_json
from posterflow.errors import Reason
from posterflow.finalize import state
from posterflow.jobs import enqueue
from posterflow.jobs.retry import plan_for
from posterflow.posters import template_store

logger = Logger(child=True)

INLINE_CHUNK = 5
"""Items per render invoke: the render function renders a chunk's pages in parallel."""
INLINE_PARALLEL = 5
"""Render invokes in flight for one inline batch."""
DEADLINE_MARGIN_S = 4.0
"""Left of the API function's remaining time for queueing the rest and answering."""
_POLL_S = 0.1
MERGE_FLAG = "merge_pdf"

Batch = Callable[..., tuple[dict[str, Any], int]]


@dataclass
class InlineRun:
    deadline: float
    job: jobs.Job | None = None
    recorded: int = 0
    queued: int = 0
    unfinished: list[int] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.job is not None and not self.unfinished


def deadline_s() -> float:
    """Seconds this request may spend rendering inline."""
    budget = config.sync_batch_deadline_s()
    context = request.lambda_context()
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        budget = min(budget, remaining() / 1000 - DEADLINE_MARGIN_S)
    return max(0.0, budget)


def check_merge_pdf(merge_pdf: bool, fmt: str | None, template: template_store.TemplateVersion) -> None:
    """``merge_pdf`` needs PDF output (the request's ``format``, else the template's)."""
    if not merge_pdf:
        return
    out = (fmt or template.format or "png").lower()
    if out != "pdf":
        raise ApiError(Reason.MERGE_PDF_NEEDS_PDF, f"merge_pdf needs pdf output; this batch renders {out}",
                       {"field": "merge_pdf", "format": out})


def mark_merge_pdf(job: jobs.Job) -> None:
    """Mark the job for finalize's merge step; before any item is queued or finished, since the
    merge step reads it when the job completes."""
    state.put(job.job_id, MERGE_FLAG, {"requested": True})


def generate_batch(body: BatchRequest, batch: Batch) -> tuple[dict[str, Any], int]:
    """The route: ``batch`` is the plain async path (``routes_generate.batch``)."""
    started = time.monotonic()
    n, limit = len(body.items), config.sync_batch_max()
    if body.mode == "sync" and n > limit:
        raise ApiError(Reason.SYNC_BATCH_TOO_LARGE,
                       f"mode sync takes at most {limit} items (POSTERFLOW_SYNC_BATCH_MAX); this batch has {n}: "
                       "use mode auto or async", {"limit": limit, "items": n, "setting": "POSTERFLOW_SYNC_BATCH_MAX"})
    inline = body.mode == "sync" or (body.mode == "auto" and n <= limit)
    if not inline and not body.merge_pdf:
        answer, status = batch(body)
        return {**answer, "mode": "async"}, status
    template = template_store.get(body.template_id)  # 404 before any job exists
    check_merge_pdf(body.merge_pdf, body.format, template)
    run = InlineRun(deadline=started + deadline_s()) if inline else None

    def dispatch(job: jobs.Job, work: Sequence[Work]) -> bool:
        if body.merge_pdf:
            mark_merge_pdf(job)
        if run is None:
            return False
        run_inline(run, job, work)
        return True

    answer, status = batch(body, template=template, dispatch=dispatch)
    if run is None:
        return {**answer, "mode": "async"}, status
    if not run.finished:
        message = (f"The inline batch did not finish within {round(run.deadline - started, 1)} s: "
                   f"{run.recorded} item(s) done, {run.queued} queued; the job goes on asynchronously. "
                   "Use the WebSocket or the status endpoint to track progress.")
        return {**answer, "mode": body.mode, "inline": False, "queued": run.queued, "message": message}, 202
    job = _settled(run)
    items, next_cursor = jobs.list_items(job.job_id, limit=1000)
    return {"success": True, **answer, **job_json(job), "mode": body.mode, "inline": True,
            "message": f"Batch of {n} item(s) rendered inline.",
            "results": [result_json(i) for i in items], "next": next_cursor}, 200


def run_inline(run: InlineRun, job: jobs.Job, work: Sequence[Work]) -> None:
    """Write the items, render them in parallel chunks until the deadline, queue what is left."""
    run.job = job
    jobs.put_items(job.job_id, (jobs.NewItem(item_id=i, entity_id=e, input=spec) for i, spec, e in work))
    jobs.add_log(job.job_id, "INFO", f"rendering {len(work)} poster(s) inline")
    chunks = [list(work[i:i + INLINE_CHUNK]) for i in range(0, len(work), INLINE_CHUNK)]
    tenant = tenancy.current()
    pool = cf.ThreadPoolExecutor(max_workers=max(1, min(INLINE_PARALLEL, len(chunks))),
                                 thread_name_prefix="inline-render")
    futures = {pool.submit(_invoke, job.job_id, chunk, tenant): chunk for chunk in chunks}
    # Running invokes go on after the deadline and record their own outcomes; unstarted ones
    # are cancelled and their items queued.
    pool.shutdown(wait=False, cancel_futures=False)
    done, late = cf.wait(futures, timeout=max(0.0, run.deadline - time.monotonic()))
    unrecorded: list[int] = []
    for future in done:
        try:
            unrecorded.extend(future.result())
        except Exception:
            logger.exception("an inline render chunk failed; its items go to the queue", extra={"job_id": job.job_id})
            unrecorded.extend(i for i, _, _ in futures[future])
    for future in late:
        future.cancel()
    if late or unrecorded:
        _queue_pending(run, job)
    run.recorded = len(work) - len(run.unfinished)


def _invoke(job_id: str, chunk: list[Work], tenant: str) -> list[int]:
    """One chunk through the render function's inline entry point; the item ids it did not record."""
    payload = {"inline": {"job_id": job_id, "items": [{"item_id": i, "spec": spec} for i, spec, _ in chunk]},
               "tenant": tenant}
    resp = aws.client("lambda").invoke(FunctionName=config.function_name("render"),
                                       Payload=json.dumps(payload).encode())
    answer = json.loads(resp["Payload"].read() or b"null")
    if resp.get("FunctionError") or not isinstance(answer, dict) or not answer.get("ok"):
        raise RuntimeError(f"render function failed: {answer}")
    return [int(i) for i in answer.get("unrecorded", [])]


def _queue_pending(run: InlineRun, job: jobs.Job) -> None:
    """Every item still pending goes to the render queue (an inline render still running may
    finish it first: whichever lands second is not counted)."""
    pending = list(jobs.iter_items(job.job_id, status=jobs.ItemStatus.PENDING, consistent=True))
    run.unfinished = [i.item_id for i in pending]
    if not pending:
        return
    plan = plan_for(job)
    run.queued = enqueue.send_messages(plan.queue, plan.messages(pending))
    jobs.add_log(job.job_id, "INFO", f"inline batch past its deadline: {run.queued} pending item(s) queued",
                 {"items": run.unfinished[:100]})


def _settled(run: InlineRun) -> jobs.Job:
    """The job once finalize has built its archive (and merged PDF, which comes first), or as it
    is at the deadline: the items' results are complete either way. Email and webhook are not
    waited for (a slow receiver must not hold the answer)."""
    assert run.job is not None
    job = jobs.get_job(run.job.job_id)
    while not (job.is_final or job.archive_key) and time.monotonic() < run.deadline:
        time.sleep(_POLL_S)
        job = jobs.get_job(job.job_id)
    return job
