"""Item completion with exactly-once counters, the finalize trigger, and the job-wide
operations built on them: set_total, complete, cancel, retry, sweep.

Counting rule (DESIGN.md): an item's move out of ``pending`` and the job's counter ``ADD``
happen in one TransactWriteItems conditioned on the item still being pending, so an SQS
message delivered twice counts once.

Finalize trigger: once ``processed == total`` the caller that wins a conditional *claim* on
the job (``finalize_claimed_round``) starts the finalize execution. The claim makes "this
call started it" exact even on AWS, where a second StartExecution with the same name and
input of a running execution also succeeds. A caller that finds a claim older than
:data:`FINALIZE_HEAL_AFTER_S` on a job still not final starts the execution again (the name
makes that harmless), which heals a worker that died between claim and start.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from posterflow import aws, config
from posterflow.jobs import _ddb as d
from posterflow.jobs._expr import Expr
from posterflow.jobs.logs import add_log
from posterflow.jobs.models import (
    ACTIVE_JOB_STATUSES,
    ALLOWED_FROM,
    CancelOutcome,
    FinishOutcome,
    FinishResult,
    Item,
    ItemOutcome,
    ItemStatus,
    Job,
    JobNotFound,
    JobStateConflict,
    JobStatus,
    NewItem,
    TotalSet,
)
from posterflow.jobs.store import (
    _gsi_pk,
    find_job,
    get_item,
    get_job,
    iter_items,
    list_active_jobs,
    put_items,
    set_status,
    truncate_error,
)

FINALIZE_HEAL_AFTER_S = 120.0
_log = logging.getLogger(__name__)
T = TypeVar("T")
_DONE_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_ERRORS, JobStatus.FAILED})


def finish_item(
    job_id: str,
    item_id: int,
    *,
    status: ItemStatus | str,
    output_key: str | None = None,
    error: str | None = None,
    timings: dict[str, float] | None = None,
    extra: dict[str, Any] | None = None,
) -> FinishOutcome:
    """Record an item's outcome and count it exactly once.

    Returns ``already_done`` (not an error) when the item had already left ``pending``: a
    redelivered message, the DLQ consumer after a late success, a sweep racing a worker.
    Raises :class:`ItemNotFound` / :class:`JobNotFound` for unknown ids."""
    status = ItemStatus(status)
    if status == ItemStatus.PENDING:
        raise ValueError("an item is finished with a terminal status, not pending")
    outcome = ItemOutcome(item_id=item_id, status=status, output_key=output_key, error=error, timings=timings,
                          extra=extra)
    # No read first: the transaction's condition on the item being pending is the check, and
    # a redelivery (rare) pays for one cancelled transaction instead of every item paying for
    # a read.
    now = d.now_iso()
    try:
        d.transact([_item_update(job_id, outcome, now), _counter_update(job_id, [outcome], now)])
    except ClientError as exc:
        codes = d.cancellation_codes(exc)
        if codes[:1] == ["ConditionalCheckFailed"]:
            return _already_done(job_id, get_item(job_id, item_id).status)
        if codes[1:2] == ["ConditionalCheckFailed"]:
            raise JobNotFound(job_id) from exc
        raise
    after, started = _after_counting(job_id)
    return FinishOutcome(result=FinishResult.FINISHED, item_status=status, job=after, finalize_started=started)


# Items per transaction in finish_items: DynamoDB allows 100 actions, one is the counter update.
FINISH_BATCH = 50


def finish_items(job_id: str, outcomes: Sequence[ItemOutcome]) -> list[FinishOutcome]:
    """Record several outcomes of one job, each counted exactly once, in one transaction per
    :data:`FINISH_BATCH` items with one counter update for all of them; results in order.

    A worker's batch lands with one write of the job's counters instead of one per item (the
    job row is every worker's hot key). If any item had already left ``pending``, nothing of
    that transaction was written and its outcomes are recorded one by one instead."""
    results: list[FinishOutcome] = []
    for start in range(0, len(outcomes), FINISH_BATCH):
        results.extend(_finish_chunk(job_id, list(outcomes[start:start + FINISH_BATCH])))
    return results


def finish_batch(entries: Sequence[tuple[str, ItemOutcome, T]]) -> list[T]:
    """A worker's batch: ``(job_id, outcome, tag)`` in message order. Records each job's
    outcomes with :func:`finish_items` (one by one if that fails) and returns the tags of the
    outcomes that could not be recorded, for the worker to leave for redelivery."""
    per_job: dict[str, list[tuple[ItemOutcome, T]]] = {}
    for job_id, outcome, tag in entries:
        per_job.setdefault(job_id, []).append((outcome, tag))
    unrecorded: list[T] = []
    for job_id, pairs in per_job.items():
        try:
            finish_items(job_id, [outcome for outcome, _ in pairs])
            continue
        except Exception:
            _log.warning("recording a batch of %d outcomes of job %s failed; recording them one by one",
                         len(pairs), job_id, exc_info=True)
        for outcome, tag in pairs:
            try:
                _finish_one(job_id, outcome)
            except Exception:
                _log.exception("recording item %s of job %s failed", outcome.item_id, job_id)
                unrecorded.append(tag)
    return unrecorded


def _finish_chunk(job_id: str, outcomes: list[ItemOutcome]) -> list[FinishOutcome]:
    if len(outcomes) < 2 or len({o.item_id for o in outcomes}) < len(outcomes):
        return [_finish_one(job_id, o) for o in outcomes]
    if any(o.status == ItemStatus.PENDING for o in outcomes):
        raise ValueError("an item is finished with a terminal status, not pending")
    now = d.now_iso()
    try:
        d.transact([*(_item_update(job_id, o, now) for o in outcomes), _counter_update(job_id, outcomes, now)])
    except ClientError as exc:
        codes = d.cancellation_codes(exc)
        if "ConditionalCheckFailed" in codes[:-1]:  # a redelivery among them: count each on its own
            return [_finish_one(job_id, o) for o in outcomes]
        if codes[len(outcomes):len(outcomes) + 1] == ["ConditionalCheckFailed"]:
            raise JobNotFound(job_id) from exc
        raise
    after, started = _after_counting(job_id)
    return [FinishOutcome(result=FinishResult.FINISHED, item_status=o.status, job=after,
                          finalize_started=started and i == len(outcomes) - 1) for i, o in enumerate(outcomes)]


def _finish_one(job_id: str, o: ItemOutcome) -> FinishOutcome:
    return finish_item(job_id, o.item_id, status=o.status, output_key=o.output_key, error=o.error, timings=o.timings,
                       extra=o.extra)


def _item_update(job_id: str, outcome: ItemOutcome, now: str) -> dict[str, Any]:
    """The conditional update that moves one pending item to its outcome."""
    item = Expr().set("status", outcome.status.value).set("updated_at", now).set("finished_at", now)
    item.add("attempts", 1)
    if outcome.output_key is not None:
        item.set("output_key", outcome.output_key)
    if outcome.error is not None:
        item.set("error", truncate_error(outcome.error))
    if outcome.timings:
        item.set("timings", {k: float(v) for k, v in outcome.timings.items()})
    if outcome.extra:
        # One action for the whole map: items are created with an empty ``extra`` and only
        # their outcome fills it, so there is nothing to merge with (a retried item's new
        # outcome replaces the old one's fields).
        item.set("extra", dict(outcome.extra))
    condition = f"{item.name('status')} = {item.value(ItemStatus.PENDING.value)}"
    key = d.key(d.job_pk(job_id), d.item_sk(outcome.item_id))
    return {"Update": {"TableName": d.table(), "Key": key, **item.params(condition)}}


def _counter_update(job_id: str, outcomes: Sequence[ItemOutcome], now: str) -> dict[str, Any]:
    """The job's counters moved by these outcomes, conditioned on the job existing."""
    job = Expr().add("processed", len(outcomes))
    for status in dict.fromkeys(o.status for o in outcomes):
        job.add(status.value, sum(1 for o in outcomes if o.status == status))
    job.set("updated_at", now).set("last_progress_at", time.time())
    condition = f"attribute_exists({job.name(d.spec().partition_key)})"
    return {"Update": {"TableName": d.table(), "Key": d.key(d.job_pk(job_id), d.META), **job.params(condition)}}


def _after_counting(job_id: str) -> tuple[Job, bool]:
    """Read the job after a counting write: the first landed item moves it from queued to
    processing, and the write that completed it starts finalize."""
    after = get_job(job_id)
    if after.status == JobStatus.QUEUED:
        # Losing this race to another status change (processing by a sibling, cancelled by a
        # user) is fine.
        try:
            after = set_status(job_id, JobStatus.PROCESSING, allowed_from=[JobStatus.QUEUED])
        except JobStateConflict:
            after = get_job(job_id)
    return after, _maybe_start_finalize(after)


def _already_done(job_id: str, item_status: ItemStatus) -> FinishOutcome:
    job = find_job(job_id)
    if job is None:
        raise JobNotFound(job_id)
    # A worker that died between its counting write and the finalize start is healed by the
    # redelivery of its message.
    started = _maybe_start_finalize(job)
    return FinishOutcome(result=FinishResult.ALREADY_DONE, item_status=item_status, job=job, finalize_started=started)


def check_completion(job_id: str) -> bool:
    """Start finalize if the job's items have all landed and nobody has; True if this call
    started it. Safe to call any time (sweep, after set_total, an admin action)."""
    return _maybe_start_finalize(get_job(job_id))


def _maybe_start_finalize(job: Job) -> bool:
    if not job.is_complete or job.status in _DONE_STATUSES:
        return False
    if job.finalize_claimed_round == job.finalize_round:
        claimed_at = job.finalize_claimed_at or 0.0
        if time.time() - claimed_at > FINALIZE_HEAL_AFTER_S:
            _start_execution(job)
        return False
    if not _claim_finalize(job):
        return False
    try:
        return _start_execution(job)
    except Exception:
        _release_claim(job)
        raise


def _claim_finalize(job: Job) -> bool:
    # The token tells this claim from a sibling's: when DynamoDB answers a 500 after the write
    # landed, the SDK's retry finds the claim taken, and only the token says it was ours (else
    # nobody would start the execution until the heal, minutes later).
    token = uuid.uuid4().hex
    e = Expr().set("finalize_claimed_round", job.finalize_round).set("finalize_claimed_at", time.time())
    e.set("finalize_claim_token", token)
    claimed = e.name("finalize_claimed_round")
    round_value = e.value(job.finalize_round)
    condition = (
        f"(attribute_not_exists({claimed}) OR {claimed} <> {round_value}) "
        f"AND {e.name('finalize_round')} = {round_value} AND {e.name('processed')} = {e.name('total')}"
    )
    try:
        d.ddb().update_item(TableName=d.table(), Key=d.key(d.job_pk(job.job_id), d.META),
                            ReturnValuesOnConditionCheckFailure="ALL_OLD", **e.params(condition))
        return True
    except ClientError as exc:
        if d.is_conditional_failure(exc):
            current: dict[str, Any] = dict(exc.response.get("Item") or {})  # type: ignore[call-overload]
            return bool(current.get("finalize_claim_token", {}).get("S") == token)
        raise


def _release_claim(job: Job) -> None:
    e = Expr().remove("finalize_claimed_round").remove("finalize_claimed_at")
    condition = f"{e.name('finalize_claimed_round')} = {e.value(job.finalize_round)}"
    # Best effort: a claim left behind is healed after FINALIZE_HEAL_AFTER_S.
    with contextlib.suppress(ClientError):
        d.ddb().update_item(TableName=d.table(), Key=d.key(d.job_pk(job.job_id), d.META), **e.params(condition))


def _start_execution(job: Job) -> bool:
    """True if this call started the execution; False if it already existed."""
    payload = {"job_id": job.job_id, "finalize_round": job.finalize_round}
    try:
        aws.client("stepfunctions").start_execution(
            stateMachineArn=config.state_machine_arn("finalize"),
            name=job.finalize_execution_name,
            input=json.dumps(payload),
        )
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            return False
        raise


def set_total(job_id: str, total: int) -> TotalSet:
    """Fix the item count once the splitter knows it. Idempotent for the same value; a
    different value, or one below the items already processed, is a conflict. Items may all
    have landed before this (the splitter sends as it reads), so this also checks completion."""
    if not 0 <= total <= d.MAX_ITEMS:
        raise ValueError(f"total must be within 0..{d.MAX_ITEMS}")
    e = Expr().set("total", total).set("updated_at", d.now_iso()).set("last_progress_at", time.time())
    t_name, t_value = e.name("total"), e.value(total)
    condition = (
        f"attribute_exists({e.name(d.spec().partition_key)}) AND "
        f"(attribute_not_exists({t_name}) OR {t_name} = {t_value}) AND {e.name('processed')} <= {t_value}"
    )
    try:
        d.ddb().update_item(TableName=d.table(), Key=d.key(d.job_pk(job_id), d.META), **e.params(condition))
    except ClientError as exc:
        if not d.is_conditional_failure(exc):
            raise
        job = find_job(job_id)
        if job is None:
            raise JobNotFound(job_id) from exc
        raise JobStateConflict(
            job_id, job.status, f"set total {total} (total is {job.total}, processed {job.processed})"
        ) from exc
    job = get_job(job_id)
    return TotalSet(job=job, finalize_started=_maybe_start_finalize(job))


def complete_job(
    job_id: str, *, finalize_round: int | None = None, archive_key: str | None = None, **fields: Any
) -> Job:
    """Finalize's last step: give the job its final status from its counters
    (:meth:`Job.final_status`). Idempotent for a re-run; refuses (JobStateConflict) while items
    are outstanding or when a retry has started a newer round than ``finalize_round``."""
    job = get_job(job_id)
    if finalize_round is not None and job.finalize_round != finalize_round:
        raise JobStateConflict(
            job_id, job.status, f"complete round {finalize_round} (the job is on round {job.finalize_round})"
        )
    if job.status in _DONE_STATUSES:
        return job
    if not job.is_complete:
        raise JobStateConflict(job_id, job.status, f"complete with {job.processed} of {job.total} items processed")
    target = job.final_status()
    # The counters read above must still hold when the status is written.
    guard = (
        "#processed = #total AND #failed = :xf AND #finalize_round = :xr",
        {"#processed": "processed", "#total": "total", "#failed": "failed", "#finalize_round": "finalize_round"},
        {":xf": job.failed, ":xr": job.finalize_round},
    )
    allowed = [JobStatus.CANCELLED] if target == JobStatus.CANCELLED else [*ALLOWED_FROM[target]]
    if archive_key is not None:
        fields["archive_key"] = archive_key
    return set_status(job_id, target, allowed_from=allowed, extra_condition=guard, **fields)


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
            outcome = finish_item(job_id, item.item_id, status=ItemStatus.CANCELLED, error="cancelled")
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
                    update={"status": ItemStatus.PENDING, "error": None, "output_key": None, "finished_at": None}
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
    it.remove("error").remove("output_key").remove("finished_at")
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
    reason = f"stalled: no progress for {older_than_s:g} s"
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
        failed = 0
        for item_id in sorted([*pending, *missing]):
            failed += finish_item(job.job_id, item_id, status=ItemStatus.FAILED, error=reason).counted
        add_log(job.job_id, "WARNING", reason, {"items_failed": failed, "items_never_written": len(missing)})
        swept.append(job.job_id)
    return swept
