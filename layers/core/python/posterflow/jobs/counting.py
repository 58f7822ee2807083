"""Item completion with exactly-once counters, and the job's item count.

Counting rule (docs/architecture.md): an item's move out of ``pending`` and the job's counter
``ADD`` happen in one TransactWriteItems conditioned on the item still being pending, so an
SQS message delivered twice counts once. The write that completes the job hands over to
:mod:`posterflow.jobs.finalize_trigger`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from posterflow.errors import Reason
from posterflow.jobs import _ddb as d
from posterflow.jobs import stats
from posterflow.jobs._expr import Expr
from posterflow.jobs.errors import (
    JobNotFound,
    JobStateConflict,
)
from posterflow.jobs.finalize_trigger import _maybe_start_finalize
from posterflow.jobs.logs import log_failed_items
from posterflow.jobs.models import (
    FinishOutcome,
    FinishResult,
    ItemOutcome,
    ItemStatus,
    Job,
    JobStatus,
    TotalSet,
)
from posterflow.jobs.store import (
    find_job,
    get_item,
    get_job,
    set_status,
    truncate_error,
)

_log = logging.getLogger(__name__)
T = TypeVar("T")


def finish_item(
    job_id: str,
    item_id: int,
    *,
    status: ItemStatus | str,
    output_key: str | None = None,
    error: str | None = None,
    error_code: Reason | str | None = None,
    timings: dict[str, float] | None = None,
    extra: dict[str, Any] | None = None,
) -> FinishOutcome:
    """Record an item's outcome and count it exactly once.

    Returns ``already_done`` (not an error) when the item had already left ``pending``: a
    redelivered message, the DLQ consumer after a late success, a sweep racing a worker.
    Raises :class:`ItemNotFound` / :class:`JobNotFound` for unknown ids. An ``error`` (the
    message) comes with its ``error_code`` (a :class:`~posterflow.errors.Reason`)."""
    status = ItemStatus(status)
    if status == ItemStatus.PENDING:
        raise ValueError("an item is finished with a terminal status, not pending")
    outcome = ItemOutcome(item_id=item_id, status=status, output_key=output_key, error=error,
                          error_code=Reason(error_code) if error_code is not None else None, timings=timings,
                          extra=extra)
    # No read first: the transaction's condition on the item being pending is the check, and
    # a redelivery (rare) pays for one cancelled transaction instead of every item paying for
    # a read.
    now = d.now_iso()
    # The aggregates' ADD rides in the same transaction (jobs/stats.py): a redelivery that
    # fails the item's condition changes no stats either.
    recording = stats.record_op(job_id, [outcome], now)
    try:
        d.transact([_item_update(job_id, outcome, now), _counter_update(job_id, [outcome], now),
                    *([recording.operation] if recording else [])])
    except ClientError as exc:
        codes = d.cancellation_codes(exc)
        if codes[:1] == ["ConditionalCheckFailed"]:
            return _already_done(job_id, get_item(job_id, item_id).status)
        if codes[1:2] == ["ConditionalCheckFailed"]:
            raise JobNotFound(job_id) from exc
        raise
    stats.after_commit(recording)
    after, started = _after_counting(job_id)
    return FinishOutcome(result=FinishResult.FINISHED, item_status=status, job=after, finalize_started=started)


# Items per transaction in finish_items: DynamoDB allows 100 actions; one more is the counter
# update and one the stats aggregate.
FINISH_BATCH = 50


def finish_items(job_id: str, outcomes: Sequence[ItemOutcome], *, source: str = "worker") -> list[FinishOutcome]:
    """Record several outcomes of one job, each counted exactly once, in one transaction per
    :data:`FINISH_BATCH` items with one counter update for all of them; results in order.

    A worker's batch lands with one write of the job's counters instead of one per item (the
    job row is every worker's hot key). If any item had already left ``pending``, nothing of
    that transaction was written and its outcomes are recorded one by one instead."""
    results: list[FinishOutcome] = []
    try:
        for start in range(0, len(outcomes), FINISH_BATCH):
            results.extend(_finish_chunk(job_id, list(outcomes[start:start + FINISH_BATCH])))
    finally:
        # Every failed item this call counted leaves a log line naming it and its reason (one
        # line per batch); a redelivered item counted before was logged then.
        log_failed_items(job_id, [o for o, r in zip(outcomes, results, strict=False) if r.counted],
                         source=source)
    return results


def finish_batch(entries: Sequence[tuple[str, ItemOutcome, T]], *, source: str = "worker") -> list[T]:
    """A worker's batch: ``(job_id, outcome, tag)`` in message order. Records each job's
    outcomes with :func:`finish_items` (one by one if that fails) and returns the tags of the
    outcomes that could not be recorded, for the worker to leave for redelivery."""
    per_job: dict[str, list[tuple[ItemOutcome, T]]] = {}
    for job_id, outcome, tag in entries:
        per_job.setdefault(job_id, []).append((outcome, tag))
    unrecorded: list[T] = []
    for job_id, pairs in per_job.items():
        try:
            finish_items(job_id, [outcome for outcome, _ in pairs], source=source)
            continue
        except Exception:
            _log.warning("recording a batch of %d outcomes of job %s failed; recording them one by one",
                         len(pairs), job_id, exc_info=True)
        counted: list[ItemOutcome] = []
        for outcome, tag in pairs:
            try:
                if _finish_one(job_id, outcome).counted:
                    counted.append(outcome)
            except Exception:
                _log.exception("recording item %s of job %s failed", outcome.item_id, job_id)
                unrecorded.append(tag)
        log_failed_items(job_id, counted, source=source)
    return unrecorded


def _finish_chunk(job_id: str, outcomes: list[ItemOutcome]) -> list[FinishOutcome]:
    if len(outcomes) < 2 or len({o.item_id for o in outcomes}) < len(outcomes):
        return [_finish_one(job_id, o) for o in outcomes]
    if any(o.status == ItemStatus.PENDING for o in outcomes):
        raise ValueError("an item is finished with a terminal status, not pending")
    now = d.now_iso()
    recording = stats.record_op(job_id, outcomes, now)
    try:
        d.transact([*(_item_update(job_id, o, now) for o in outcomes), _counter_update(job_id, outcomes, now),
                    *([recording.operation] if recording else [])])
    except ClientError as exc:
        codes = d.cancellation_codes(exc)
        if "ConditionalCheckFailed" in codes[:len(outcomes)]:  # a redelivery among them: count each on its own
            return [_finish_one(job_id, o) for o in outcomes]
        if codes[len(outcomes):len(outcomes) + 1] == ["ConditionalCheckFailed"]:
            raise JobNotFound(job_id) from exc
        raise
    stats.after_commit(recording)
    after, started = _after_counting(job_id)
    return [FinishOutcome(result=FinishResult.FINISHED, item_status=o.status, job=after,
                          finalize_started=started and i == len(outcomes) - 1) for i, o in enumerate(outcomes)]


def _finish_one(job_id: str, o: ItemOutcome) -> FinishOutcome:
    return finish_item(job_id, o.item_id, status=o.status, output_key=o.output_key, error=o.error,
                       error_code=o.error_code, timings=o.timings, extra=o.extra)


def _item_update(job_id: str, outcome: ItemOutcome, now: str) -> dict[str, Any]:
    """The conditional update that moves one pending item to its outcome."""
    item = Expr().set("status", outcome.status.value).set("updated_at", now).set("finished_at", now)
    item.add("attempts", 1)
    if outcome.output_key is not None:
        item.set("output_key", outcome.output_key)
    if outcome.error is not None:
        item.set("error", truncate_error(outcome.error))
    if outcome.error_code is not None:
        item.set("error_code", outcome.error_code.code)
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
    # The job status's current_entity (seed 002's "current recipient"): the latest of these
    # items that names its entity, in the write that lands them (no read, no extra write).
    entity = next((o.entity_id for o in reversed(outcomes) if o.entity_id), None)
    if entity is not None:
        job.set("current_entity", entity)
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


