"""Job-wide operations built on the counters: fail, cancel, retry the failed items, and the
sweep that fails the outstanding items of a stalled job so it completes instead of hanging.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

from posterflow.errors import Reason
from posterflow.jobs import _ddb as d
from posterflow.jobs import stats
from posterflow.jobs._expr import Expr
from posterflow.jobs.counting import finish_item, set_total
from posterflow.jobs.errors import (
    JobNotFound,
    JobStateConflict,
)
from posterflow.jobs.finalize_trigger import _maybe_start_finalize
from posterflow.jobs.logs import add_log, log_failed_items
from posterflow.jobs.models import (
    ACTIVE_JOB_STATUSES,
    ALLOWED_FROM,
    CancelOutcome,
    Item,
    ItemOutcome,
    ItemStatus,
    Job,
    JobStatus,
    NewItem,
)
from posterflow.jobs.store import (
    _gsi_pk,
    find_job,
    get_job,
    iter_items,
    list_active_jobs,
    put_items,
    set_status,
)


def fail_job(job_id: str, error: str, **fields: Any) -> Job:
    """Mark the whole job failed (input unreadable, finalize failed) with a reason."""
    return set_status(job_id, JobStatus.FAILED, error=error, **fields)


def cancel_job(job_id: str, *, mark_items: bool = True, deadline_s: float | None = None) -> CancelOutcome:
    """Cancel a queued or processing job (JobStateConflict for a finished one; cancelling twice
    is fine). Its pending items are then finished as ``cancelled`` here, up to ``deadline_s``
    seconds of work, so the counters complete and finalize runs; items left over are finished
    by workers, which check :func:`is_cancelled` before working."""
    set_status(job_id, JobStatus.CANCELLED)
    cancelled = 0
    remaining = False
    if mark_items:
        start = time.monotonic()
        for item in iter_items(job_id, status=ItemStatus.PENDING, consistent=True):
            if deadline_s is not None and time.monotonic() - start > deadline_s:
                remaining = True
                break
            outcome = finish_item(job_id, item.item_id, status=ItemStatus.CANCELLED, error="cancelled",
                                  error_code=Reason.CANCELLED)
            cancelled += outcome.counted
    return CancelOutcome(job=get_job(job_id), items_cancelled=cancelled, items_remaining=remaining)


def retry_failed(job_id: str, *, retryable: Callable[[Item], bool] | None = None) -> list[Item]:
    """Put the job's failed items back to pending (the caller re-sends their messages) and
    move the job back to processing. Each item's reset and its counter correction are one
    transaction conditioned on the item being failed, so concurrent retries do not
    double-correct. The first reset also bumps ``finalize_round``, in the same transaction,
    so the finished round's execution name is not reused and a stale finalize cannot complete
    the job (complete_job checks the round). Items ``retryable`` rejects are left failed."""
    job = get_job(job_id)
    if job.status == JobStatus.CANCELLED:
        raise JobStateConflict(job_id, job.status, "retry items of a cancelled job")
    retried: list[Item] = []
    for item in iter_items(job_id, status=ItemStatus.FAILED, consistent=True):
        if retryable is not None and not retryable(item):
            continue  # nothing to send again (a row or entry that can never be processed): stays failed
        if _reset_failed_item(job_id, item, move_job=not retried):
            retried.append(
                item.model_copy(
                    update={"status": ItemStatus.PENDING, "error": None, "error_code": None, "output_key": None,
                            "finished_at": None}
                )
            )
    return retried


def _reset_failed_item(job_id: str, item: Item, *, move_job: bool) -> bool:
    t = d.spec()
    now = d.now_iso()
    pk = d.job_pk(job_id)
    it = Expr().set("status", ItemStatus.PENDING.value).set("updated_at", now)
    if item.error is not None:
        it.set("last_error", item.error)
    if item.error_code is not None:
        it.set("last_error_code", item.error_code)
    it.remove("error").remove("error_code").remove("output_key").remove("finished_at")
    it_cond = f"{it.name('status')} = {it.value(ItemStatus.FAILED.value)}"
    meta = Expr().add("processed", -1).add("failed", -1).set("updated_at", now).set("last_progress_at", time.time())
    ops: list[dict[str, Any]] = [
        {"Update": {"TableName": d.table(), "Key": d.key(pk, d.item_sk(item.item_id)), **it.params(it_cond)}},
    ]
    if move_job:
        meta.set("status", JobStatus.PROCESSING.value).set_if_absent("started_at", now).remove("completed_at")
        meta.add("finalize_round", 1)
        allowed = sorted(s.value for s in ALLOWED_FROM[JobStatus.PROCESSING])
        meta_cond = meta.in_("status", allowed)
        index = Expr().set("status", JobStatus.PROCESSING.value).set(t.gsi_partition_key, _gsi_pk(JobStatus.PROCESSING))
        ops.append({"Update": {"TableName": d.table(), "Key": d.key(pk, d.META), **meta.params(meta_cond)}})
        ops.append({"Update": {"TableName": d.table(), "Key": d.key(pk, d.INDEX), **index.params()}})
    else:
        meta_cond = f"attribute_exists({meta.name(t.partition_key)})"
        ops.append({"Update": {"TableName": d.table(), "Key": d.key(pk, d.META), **meta.params(meta_cond)}})
    # The stats take the failure back too (jobs/stats.py), so they keep agreeing with the counters.
    uncount = stats.uncount_failed_op(job_id, item.finished_at)
    if uncount is not None:
        ops.append(uncount)
    try:
        d.transact(ops)
        return True
    except ClientError as exc:
        codes = d.cancellation_codes(exc)
        if codes[:1] == ["ConditionalCheckFailed"]:
            return False  # retried (or finished) by someone else meanwhile
        if codes[1:2] == ["ConditionalCheckFailed"]:
            current = find_job(job_id)
            if current is None:
                raise JobNotFound(job_id) from exc
            raise JobStateConflict(job_id, current.status, "retry failed items") from exc
        raise


def sweep_stalled(older_than_s: float, *, now: float | None = None, job_ids: Iterable[str] | None = None) -> list[str]:
    """Fail the outstanding items of active jobs with no progress for ``older_than_s`` seconds,
    with a reason, so those jobs complete (with errors) instead of hanging. Item ids below the
    job's total that were never written are created and failed too: nothing is dropped
    silently. A stalled job that never received any item is failed as a whole. Returns the
    ids of the jobs swept; also restarts finalize for complete jobs whose start was lost.
    ``job_ids`` limits the sweep to those jobs (an operator's "sweep this job")."""
    cutoff = (time.time() if now is None else now) - older_than_s
    why = f"no progress for {older_than_s:g} s"  # the items' error; their error_code is stalled
    reason = f"stalled: {why}"
    swept: list[str] = []
    candidates = list(list_active_jobs()) if job_ids is None else [j for j in map(find_job, job_ids) if j]
    for job in candidates:
        if job.status not in ACTIVE_JOB_STATUSES or job.last_progress_at > cutoff:
            continue
        if job.is_complete:
            _maybe_start_finalize(job)
            continue
        pending: list[int] = []
        seen: set[int] = set()
        for item in iter_items(job.job_id, consistent=True):
            seen.add(item.item_id)
            if item.status == ItemStatus.PENDING:
                pending.append(item.item_id)
        total = job.total
        if total is None:
            if not seen:
                try:
                    fail_job(job.job_id, f"stalled: no items received within {older_than_s:g} s")
                    swept.append(job.job_id)
                except JobStateConflict:
                    pass
                continue
            total = max(seen) + 1
            try:
                set_total(job.job_id, total)
            except JobStateConflict:
                total = get_job(job.job_id).total or total
        missing = sorted(set(range(total)) - seen)
        if missing:
            put_items(job.job_id, [NewItem(item_id=i) for i in missing], if_absent=True)
        failed: list[ItemOutcome] = []
        for item_id in sorted([*pending, *missing]):
            outcome = ItemOutcome(item_id=item_id, status=ItemStatus.FAILED, error=why, error_code=Reason.STALLED)
            if finish_item(job.job_id, item_id, status=outcome.status, error=why, error_code=Reason.STALLED).counted:
                failed.append(outcome)
        log_failed_items(job.job_id, failed, source="stall sweep")
        add_log(job.job_id, "WARNING", reason, {"items_failed": len(failed), "items_never_written": len(missing)})
        swept.append(job.job_id)
    return swept
