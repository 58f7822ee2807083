"""Coalescing: at most one frame group per job every :data:`MIN_INTERVAL_S`, in order.

The stream handler builds, per job and per stream batch, one progress frame from the job's
latest image (and one batch of finished items). Before posting it asks the :class:`Gate`
for the job's slot. The gate's state lives in DynamoDB (``JOB#<id>/PROGRESS``), because the
next batch of a job may run in another function instance: a conditional write claims the slot
only if the last frame is at least ``MIN_INTERVAL_S`` old *and* no newer state of the job has
been sent. A too-early claim sleeps until the slot opens (at most ``MIN_INTERVAL_S``) and
tries again, rather than dropping the frame, so the latest state of every batch is sent and
the last frame is always the final state. A stale claim (another instance already sent a
newer state) is dropped. The wait also lets the stream accumulate: while we sleep the next
batch grows, so a busy job costs about four frames a second however many items land.

The same record remembers which finalize round's ``job_completed``/``job_failed`` has been
announced, so a retried stream batch does not announce it twice.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from botocore.exceptions import ClientError

from posterflow.jobs import _ddb as d
from posterflow.jobs._expr import Expr

MIN_INTERVAL_S = 0.25
PROGRESS_SK = "PROGRESS"
_MAX_ATTEMPTS = 8
_CACHE_SIZE = 4096

Order = tuple[int, int]


@dataclass(frozen=True)
class Claim:
    ok: bool
    stale: bool = False
    retry_at: float = 0.0


class GateStore(Protocol):
    def claim(self, job_id: str, now: float, order: Order, interval: float, expires_at: int | None) -> Claim: ...

    def announce_once(self, job_id: str, round_: int, expires_at: int | None) -> bool: ...


class DynamoGateStore:
    """The gate's state as one record per job in the jobs table."""

    def claim(self, job_id: str, now: float, order: Order, interval: float, expires_at: int | None) -> Claim:
        e = Expr().set("sent_at", now).set("sent_round", order[0]).set("sent_processed", order[1])
        e.set("entity", "progress_gate")
        if expires_at is not None:
            e.set(d.spec().ttl_attribute, expires_at)
        sent_at, rnd, proc = e.name("sent_at"), e.name("sent_round"), e.name("sent_processed")
        r, p = e.value(order[0]), e.value(order[1])
        condition = (
            f"(attribute_not_exists({sent_at}) OR {sent_at} <= {e.value(now - interval)}) AND "
            f"(attribute_not_exists({rnd}) OR {rnd} < {r} OR ({rnd} = {r} AND {proc} <= {p}))"
        )
        try:
            d.ddb().update_item(TableName=d.table(), Key=d.key(d.job_pk(job_id), PROGRESS_SK), **e.params(condition))
            return Claim(ok=True)
        except ClientError as exc:
            if not d.is_conditional_failure(exc):
                raise
        raw = d.ddb().get_item(TableName=d.table(), Key=d.key(d.job_pk(job_id), PROGRESS_SK),
                               ConsistentRead=True).get("Item")
        rec = d.from_item(raw) if raw else {}
        sent: Order = (int(rec.get("sent_round", 0)), int(rec.get("sent_processed", 0)))
        if sent > order:
            return Claim(ok=False, stale=True)
        return Claim(ok=False, retry_at=float(rec.get("sent_at", now)) + interval)

    def announce_once(self, job_id: str, round_: int, expires_at: int | None) -> bool:
        e = Expr().set("done_round", round_).set("entity", "progress_gate")
        if expires_at is not None:
            e.set(d.spec().ttl_attribute, expires_at)
        done = e.name("done_round")
        condition = f"attribute_not_exists({done}) OR {done} < {e.value(round_)}"
        try:
            d.ddb().update_item(TableName=d.table(), Key=d.key(d.job_pk(job_id), PROGRESS_SK), **e.params(condition))
            return True
        except ClientError as exc:
            if d.is_conditional_failure(exc):
                return False
            raise


class Gate:
    """Per-job frame slots. Remembers its own last claims so an instance that just sent a
    frame sleeps before asking DynamoDB instead of failing a conditional write first."""

    def __init__(self, store: GateStore | None = None, *, interval: float = MIN_INTERVAL_S,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.store: GateStore = store or DynamoGateStore()
        self.interval = interval
        self.clock = clock
        self.sleep = sleep
        self._last: OrderedDict[str, float] = OrderedDict()

    def acquire(self, job_id: str, order: Order, *, expires_at: int | None = None) -> bool:
        """Wait for the job's slot and take it; False when a newer state was already sent."""
        hint = self._last.get(job_id)
        if hint is not None:
            self._wait_until(hint + self.interval)
        for _ in range(_MAX_ATTEMPTS):
            now = self.clock()
            claim = self.store.claim(job_id, now, order, self.interval, expires_at)
            if claim.ok:
                self._remember(job_id, now)
                return True
            if claim.stale:
                return False
            self._wait_until(claim.retry_at)
        # Lambda processes one job's records in order, so contention here means an unusual
        # deployment; sending is better than losing the state.
        self._remember(job_id, self.clock())
        return True

    def announce_once(self, job_id: str, round_: int, *, expires_at: int | None = None) -> bool:
        return self.store.announce_once(job_id, round_, expires_at)

    def _wait_until(self, when: float) -> None:
        delay = when - self.clock()
        if delay > 0:
            self.sleep(min(delay, self.interval))

    def _remember(self, job_id: str, at: float) -> None:
        self._last[job_id] = at
        self._last.move_to_end(job_id)
        while len(self._last) > _CACHE_SIZE:
            self._last.popitem(last=False)
