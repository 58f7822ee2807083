"""Write-time aggregates of item outcomes and job completions: per tenant, per kind (a poster
template's section and version; crop), per UTC day. Read back by ``GET /api/stats/*``.

Records (one table, docs/architecture.md):

- poster aggregate ``STATS#<tenant>#poster#<section>`` / ``D#<day>#V#<000042>#S<shard>``
- crop aggregate ``STATS#<tenant>#crop`` / ``D#<day>#S<shard>``
- section index ``STATS#<tenant>#poster`` / ``S#<section>`` (``first_day``, ``last_day``): which
  sections have stats, so a listing never scans

A day of one section is therefore one key range (``D#<since>`` … ``D#<until>#~``) of one
partition. Each aggregate holds ``items``, ``succeeded``, ``failed``, ``skipped``,
``cancelled``, ``timed`` (durations recorded), ``sum_ms``, ``min_ms``, ``max_ms``, a fixed
log-spaced histogram (``h000`` … ``h{BUCKETS-1}``, top-level attributes so ``ADD`` creates them),
``faces_found`` (crop), ``jobs`` and ``job_ms_sum``. Its size is bounded (at most
:data:`BUCKETS` + ~20 attributes) whatever the traffic; records expire
:data:`RETAIN_DAYS` days after their day.

Exactness follows the job counters (:mod:`posterflow.jobs.counting`): the ``ADD`` of a batch's
counts, sums and histogram buckets is one more action of the transaction that moves its items
out of ``pending``, so a redelivered message that fails the condition changes nothing. Only
succeeded items contribute a duration (``round(timings.total_ms)``, the ``generation_time_ms``
a job's results show). ``min_ms``/``max_ms`` cannot be added: they are written after the
transaction commits with conditional updates (idempotent, so a race or a repeat is harmless).
Crash window: a process that dies between the commit and those two updates leaves that batch's
durations out of min/max (its redelivery finds the items done); counts, sums and percentiles
stay exact.

A job counts once, on the day it first completes (``completed`` or ``completed_with_errors``;
cancelled and failed jobs count their items only): right after finalize's completing write,
one transaction sets the job's ``extra.stats_counted`` flag (conditioned on it being absent and
the job still complete) and adds ``jobs`` +1 and its duration, so a finalize re-run or a later
retry round completing again counts nothing. Its duration is ``completed_at - started_at``
(seed 001's query; ``created_at`` when it never started). A crash between the two writes is
healed by the re-run of finalize's complete step (it counts an already completed job that is
not counted yet); an error in that count is logged and never fails the completed job's workflow.

The shard (crc32 of the job id modulo :data:`SHARDS`) spreads concurrent jobs of one template
over a few records, so their transactions do not conflict on one hot item.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from posterflow.jobs import _ddb as d
from posterflow.jobs._expr import Expr
from posterflow.jobs.errors import InvalidDateRange, StatsTimeout
from posterflow.jobs.models import ItemOutcome, ItemStatus, Job, JobStatus
from posterflow.jobs.store import find_job

_log = logging.getLogger(__name__)

STATS_PREFIX = "STATS#"
SHARDS = 4
# Histogram: bucket 0 is [0, 1) ms; bucket i >= 1 is [RATIO**(i-1), RATIO**i) ms; the last is
# open-ended (from RATIO**(BUCKETS-2) ~ 3.5e6 ms, far beyond a Lambda's 15 minutes). A percentile
# read from it is the bucket's geometric middle clamped to min/max: within sqrt(RATIO) (~5%) of
# the exact nearest-rank value.
RATIO = 1.1
BUCKETS = 160
RETAIN_DAYS = 400
MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30
# Section listing: the most sections one answer reads, and the time budget of a read.
MAX_SECTIONS = 100
READ_BUDGET_S = 10.0
_LOG_RATIO = math.log(RATIO)
_COUNTED_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_ERRORS})
COUNTED_FLAG = "stats_counted"


# ----------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class Target:
    """Which aggregates a job's outcomes land in (fixed when the job is made)."""

    tenant: str
    kind: str
    section: str | None = None
    version: int = 0

    def pk(self) -> str:
        if self.kind == "poster":
            return f"{STATS_PREFIX}{self.tenant}#poster#{self.section}"
        return f"{STATS_PREFIX}{self.tenant}#crop"

    def sk(self, day: str, shard: int) -> str:
        if self.kind == "poster":
            return f"D#{day}#V#{self.version:06d}#S{shard}"
        return f"D#{day}#S{shard}"


def target_of(job: Job) -> Target | None:
    """The aggregates of ``job``; ``None`` for a poster job without a template section."""
    if job.kind == "poster":
        if not job.template_section:
            return None
        return Target(job.tenant, "poster", job.template_section, int(job.template_version or 0))
    return Target(job.tenant, job.kind)


def shard_of(job_id: str) -> int:
    return zlib.crc32(job_id.encode()) % SHARDS


def section_index_pk(tenant: str) -> str:
    return f"{STATS_PREFIX}{tenant}#poster"


def day_of(iso_or_now: str | None = None) -> str:
    """The UTC day (``YYYY-MM-DD``) of an ISO instant as :func:`_ddb.now_iso` writes it."""
    return (iso_or_now or d.now_iso())[:10]


# Job identity does not change after creation: one read per job per warm process.
_TARGETS: dict[str, Target | None] = {}
_TARGETS_MAX = 4096
_lock = threading.Lock()


def target_for(job_id: str) -> Target | None:
    with _lock:
        if job_id in _TARGETS:
            return _TARGETS[job_id]
    job = find_job(job_id)
    if job is None:
        return None  # not cached: the transaction's own condition reports the missing job
    found = target_of(job)
    with _lock:
        if len(_TARGETS) >= _TARGETS_MAX:
            _TARGETS.clear()
        _TARGETS[job_id] = found
    return found


# ----------------------------------------------------------------------------- histogram


def bucket_of(ms: float) -> int:
    if ms < 1:
        return 0
    return min(BUCKETS - 1, 1 + math.floor(math.log(ms) / _LOG_RATIO))


def bucket_middle(i: int) -> float:
    """A representative value of bucket ``i`` (its geometric middle)."""
    if i == 0:
        return 0.5
    return float(RATIO ** (i - 0.5))


def percentile(histogram: Mapping[int, int], p: float, lo: float | None = None, hi: float | None = None) -> int | None:
    """The nearest-rank ``p`` percentile (0 < p <= 1) read from bucket counts, clamped to the
    known min/max; ``None`` without data."""
    n = sum(histogram.values())
    if n <= 0:
        return None
    rank = max(1, math.ceil(p * n))
    seen = 0
    for i in sorted(histogram):
        seen += histogram[i]
        if seen >= rank:
            value = bucket_middle(i)
            if lo is not None:
                value = max(value, lo)
            if hi is not None:
                value = min(value, hi)
            return round(value)
    return None  # pragma: no cover - unreachable: the counts sum to n


def _hname(i: int) -> str:
    return f"h{i:03d}"


# ----------------------------------------------------------------------------- writes


def duration_ms(outcome: ItemOutcome) -> int | None:
    """The duration an outcome contributes: succeeded items with a ``total_ms`` timing."""
    if outcome.status != ItemStatus.SUCCEEDED or not outcome.timings:
        return None
    total = outcome.timings.get("total_ms")
    return None if total is None else round(total)


@dataclass
class Recording:
    """The aggregate action of one counting transaction, and what to do after it commits."""

    operation: dict[str, Any]
    pk: str
    sk: str
    durations: list[int] = field(default_factory=list)


def record_op(job_id: str, outcomes: Sequence[ItemOutcome], now: str) -> Recording | None:
    """The aggregate ``ADD`` for these outcomes of ``job_id``, recorded at ``now`` (one action
    for the counting transaction), or ``None`` for a job without aggregates."""
    target = target_for(job_id)
    if target is None or not outcomes:
        return None
    day = day_of(now)
    _ensure_indexed(target, day)
    pk, sk = target.pk(), target.sk(day, shard_of(job_id))
    e = Expr().add("items", len(outcomes))
    for status in dict.fromkeys(o.status for o in outcomes):
        e.add(status.value, sum(1 for o in outcomes if o.status == status))
    durations = [ms for ms in map(duration_ms, outcomes) if ms is not None]
    if durations:
        e.add("timed", len(durations)).add("sum_ms", sum(durations))
        buckets: dict[int, int] = {}
        for ms in durations:
            buckets[bucket_of(ms)] = buckets.get(bucket_of(ms), 0) + 1
        for i, count in sorted(buckets.items()):
            e.add(_hname(i), count)
    if target.kind == "crop":
        faces = sum(int((o.extra or {}).get("faces_found") or 0) for o in outcomes
                    if o.status == ItemStatus.SUCCEEDED)
        if faces:
            e.add("faces_found", faces)
    _identify(e, target, day)
    return Recording({"Update": {"TableName": d.table(), "Key": d.key(pk, sk), **e.params()}}, pk, sk, durations)


def _identify(e: Expr, target: Target, day: str) -> None:
    e.set_if_absent("tenant", target.tenant).set_if_absent("kind", target.kind).set_if_absent("day", day)
    if target.kind == "poster":
        e.set_if_absent("section", target.section).set_if_absent("version", target.version)
    expires = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()) + RETAIN_DAYS * 86400
    e.set_if_absent(d.spec().ttl_attribute, expires)


# Section index writes this process has made (tenant, section, day): one write per day.
_INDEXED: set[tuple[str, str, str]] = set()


def _ensure_indexed(target: Target, day: str) -> None:
    """Record that ``target``'s section has stats up to ``day`` (before the aggregate exists,
    so no aggregate is ever missing from the index)."""
    if target.kind != "poster" or target.section is None:
        return
    marker = (target.tenant, target.section, day)
    with _lock:
        if marker in _INDEXED:
            return
    e = Expr().set("section", target.section).set_if_absent("first_day", day).set("last_day", day)
    e.set_if_absent("tenant", target.tenant)
    last = e.name("last_day")
    condition = f"attribute_not_exists({last}) OR {last} < {e.value(day)}"
    try:
        d.ddb().update_item(TableName=d.table(), Key=d.key(section_index_pk(target.tenant), f"S#{target.section}"),
                            **e.params(condition))
    except ClientError as exc:
        if not d.is_conditional_failure(exc):
            raise
    with _lock:
        if len(_INDEXED) >= _TARGETS_MAX:
            _INDEXED.clear()
        _INDEXED.add(marker)


# Extremes this process knows each aggregate already has (min, max): skips writes that would fail.
# Exact whatever other instances do: a stored min_ms only ever decreases (every write of it is
# conditioned on lowering it) and max_ms only increases, and what is remembered here is a value
# the record held at some moment (written by this process, or read back from a failed
# condition). So the stored min is always <= the remembered min, and a batch whose min is >=
# the remembered one could not lower it: its update would fail its condition. Likewise for max.
# A batch that may move an extreme always writes (conditionally). Bounded like _TARGETS.
_EXTREMES: dict[tuple[str, str], tuple[int | None, int | None]] = {}


def after_commit(recording: Recording | None) -> None:
    """min/max of the durations a committed transaction recorded (conditional, idempotent).
    Never raises: the items are recorded already, and a caller that saw an error would record
    them again (as already done, losing their failure log lines); a failure here leaves the
    batch out of min/max, like the crash window."""
    if recording is None or not recording.durations:
        return
    try:
        _update_extremes(recording)
    except Exception:
        _log.warning("updating min/max of %s %s failed", recording.pk, recording.sk, exc_info=True)


def _update_extremes(recording: Recording) -> None:
    key = (recording.pk, recording.sk)
    with _lock:
        known_min, known_max = _EXTREMES.get(key, (None, None))
    lo, hi = min(recording.durations), max(recording.durations)
    if known_min is None or lo < known_min:
        known_min = _extreme(recording, "min_ms", lo, "<")
    if known_max is None or hi > known_max:
        known_max = _extreme(recording, "max_ms", hi, ">")
    with _lock:
        if len(_EXTREMES) >= _TARGETS_MAX:
            _EXTREMES.clear()
        _EXTREMES[key] = (known_min, known_max)


def _extreme(recording: Recording, attr: str, value: int, better: str) -> int | None:
    """Set ``attr`` to ``value`` if it is absent or ``value`` is ``better``; the value it holds."""
    e = Expr().set(attr, value)
    n = e.name(attr)
    condition = f"attribute_not_exists({n}) OR {e.value(value)} {better} {n}"
    try:
        d.ddb().update_item(TableName=d.table(), Key=d.key(recording.pk, recording.sk),
                            ReturnValuesOnConditionCheckFailure="ALL_OLD", **e.params(condition))
        return value
    except ClientError as exc:
        if not d.is_conditional_failure(exc):
            raise
        old = d.from_item(dict(exc.response.get("Item") or {}))  # type: ignore[call-overload]
        current = old.get(attr)
        return int(current) if isinstance(current, int | float) else None


def _parse_iso(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def count_completion_safely(job: Job) -> bool:
    """:func:`count_completion` for finalize's complete step: a failure (after the DynamoDB
    retries) is logged and leaves the job uncounted rather than failing a completed job's
    workflow; a re-run of the step counts it then."""
    try:
        return count_completion(job)
    except Exception:
        _log.warning("counting job %s in the stats failed", job.job_id, exc_info=True)
        return False


def count_completion(job: Job) -> bool:
    """Count ``job`` once in its aggregates if it has completed (``completed`` or
    ``completed_with_errors``) and was not counted before: ``jobs`` +1 and its duration, on
    the day of its ``completed_at``, in one transaction with the job's ``extra.stats_counted``
    flag (conditioned on the flag being absent and the job still being complete), so a
    finalize re-run or a later retry round completing again counts nothing. True if this
    call counted it. Called after the completing write; a crash in between is healed by the
    re-run of finalize's complete step, which calls this for an already completed job."""
    if job.status not in _COUNTED_STATUSES or job.extra.get(COUNTED_FLAG) or job.completed_at is None:
        return False
    target = target_of(job)
    if target is None:
        return False
    day = day_of(job.completed_at)
    _ensure_indexed(target, day)
    start = job.started_at or job.created_at
    elapsed = max(0, round((_parse_iso(job.completed_at) - _parse_iso(start)).total_seconds() * 1000))
    e = Expr().add("jobs", 1).add("job_ms_sum", elapsed)
    _identify(e, target, day)
    meta = Expr().set(f"extra.{COUNTED_FLAG}", {"day": day, "ms": elapsed})
    flag = meta.name(f"extra.{COUNTED_FLAG}")
    condition = (f"attribute_not_exists({flag}) AND {meta.in_('status', sorted(s.value for s in _COUNTED_STATUSES))}"
                 f" AND {meta.name('completed_at')} = {meta.value(job.completed_at)}")
    try:
        d.transact([
            {"Update": {"TableName": d.table(), "Key": d.key(d.job_pk(job.job_id), d.META), **meta.params(condition)}},
            {"Update": {"TableName": d.table(), "Key": d.key(target.pk(), target.sk(day, shard_of(job.job_id))),
                        **e.params()}},
        ])
    except ClientError as exc:
        if "ConditionalCheckFailed" in d.cancellation_codes(exc):
            return False  # counted already, or the job moved on (a retry round) meanwhile
        raise
    return True


def uncount_failed_op(job_id: str, finished_at: str | None) -> dict[str, Any] | None:
    """The aggregate correction of a failed item a retry puts back to pending (``items`` and
    ``failed`` -1 on the day it failed), for the retry's transaction: stats then agree with the
    job's counters after the retry. Failed items carry no duration, so nothing else moves.
    ``None`` when the day's aggregate may have expired or the job has none."""
    if finished_at is None:
        return None
    target = target_for(job_id)
    day = day_of(finished_at)
    if target is None or date.fromisoformat(day) < datetime.now(UTC).date() - timedelta(days=RETAIN_DAYS - 30):
        return None
    e = Expr().add("items", -1).add(ItemStatus.FAILED.value, -1)
    _identify(e, target, day)
    return {"Update": {"TableName": d.table(), "Key": d.key(target.pk(), target.sk(day, shard_of(job_id))),
                       **e.params()}}


# ----------------------------------------------------------------------------- reads


@dataclass
class Totals:
    """Summed aggregates (of one version, one section, or crops)."""

    jobs: int = 0
    items: int = 0
    succeeded: int = 0
    failed: int = 0
    faces_found: int = 0
    timed: int = 0
    sum_ms: int = 0
    min_ms: int | None = None
    max_ms: int | None = None
    job_ms_sum: int = 0
    histogram: dict[int, int] = field(default_factory=dict)

    def add(self, record: Mapping[str, Any]) -> None:
        for name in ("jobs", "items", "succeeded", "failed", "faces_found", "timed", "sum_ms", "job_ms_sum"):
            setattr(self, name, getattr(self, name) + int(record.get(name) or 0))
        for name, pick in (("min_ms", min), ("max_ms", max)):
            value = record.get(name)
            if value is not None:
                current = getattr(self, name)
                setattr(self, name, int(value) if current is None else pick(current, int(value)))
        for attr, value in record.items():
            if len(attr) == 4 and attr[0] == "h" and attr[1:].isascii() and attr[1:].isdigit() and value:
                i = int(attr[1:])
                self.histogram[i] = self.histogram.get(i, 0) + int(value)

    def timing(self) -> dict[str, Any]:
        if self.timed <= 0:
            return {"avg": None, "min": None, "max": None, "p50": None, "p95": None}
        return {"avg": round(self.sum_ms / self.timed, 2), "min": self.min_ms, "max": self.max_ms,
                "p50": percentile(self.histogram, 0.50, self.min_ms, self.max_ms),
                "p95": percentile(self.histogram, 0.95, self.min_ms, self.max_ms)}

    def avg_job_duration_ms(self) -> float | None:
        return round(self.job_ms_sum / self.jobs, 2) if self.jobs > 0 else None

    def counts(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "items": self.items, "succeeded": self.succeeded, "failed": self.failed}


def _query_range(pk: str, since: str, until: str, deadline: float) -> list[dict[str, Any]]:
    """Every record of ``pk`` whose day lies in [since, until]: one key range, paged."""
    t = d.spec()
    found: list[dict[str, Any]] = []
    start: dict[str, Any] | None = None
    while True:
        if time.monotonic() > deadline:
            raise StatsTimeout()
        e = Expr()
        condition = (f"{e.name(t.partition_key)} = {e.value(pk)} AND "
                     f"{e.name(t.sort_key)} BETWEEN {e.value(f'D#{since}')} AND {e.value(f'D#{until}#~')}")
        kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
        resp = d.ddb().query(TableName=d.table(), KeyConditionExpression=condition,
                             ExpressionAttributeNames=e.names, ExpressionAttributeValues=e.values, **kwargs)
        found.extend(d.from_item(raw) for raw in resp.get("Items", []))
        start = resp.get("LastEvaluatedKey")
        if not start:
            return found


def _version_of(sk: str) -> int:
    # D#<day>#V#<000042>#S<n>
    return int(sk.split("#")[3])


def section_stats(tenant: str, section: str, since: str, until: str, *,
                  deadline: float | None = None) -> dict[str, Any] | None:
    """One section's stats over [since, until] with its versions (newest first); ``None`` when
    it has no records in the range."""
    records = _query_range(f"{STATS_PREFIX}{tenant}#poster#{section}", since, until,
                           deadline if deadline is not None else time.monotonic() + READ_BUDGET_S)
    if not records:
        return None
    whole = Totals()
    versions: dict[int, Totals] = {}
    sk_name = d.spec().sort_key
    for record in records:
        whole.add(record)
        versions.setdefault(_version_of(str(record[sk_name])), Totals()).add(record)
    return {"section": section, **_shape(whole),
            "versions": [{"version": v, **_shape(versions[v])} for v in sorted(versions, reverse=True)]}


def _shape(totals: Totals) -> dict[str, Any]:
    return {**totals.counts(), "generation_ms": totals.timing(), "avg_job_duration_ms": totals.avg_job_duration_ms()}


def sections_with_stats(tenant: str, since: str, until: str, deadline: float) -> list[str]:
    """The tenant's sections whose stats may overlap [since, until], by name (index records)."""
    t = d.spec()
    names: list[str] = []
    start: dict[str, Any] | None = None
    while True:
        if time.monotonic() > deadline:
            raise StatsTimeout()
        e = Expr()
        condition = (f"{e.name(t.partition_key)} = {e.value(section_index_pk(tenant))} AND "
                     f"begins_with({e.name(t.sort_key)}, {e.value('S#')})")
        kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
        resp = d.ddb().query(TableName=d.table(), KeyConditionExpression=condition,
                             ExpressionAttributeNames=e.names, ExpressionAttributeValues=e.values, **kwargs)
        for raw in resp.get("Items", []):
            rec = d.from_item(raw)
            if str(rec.get("first_day", "")) <= until and str(rec.get("last_day", "9999")) >= since:
                names.append(str(rec["section"]))
        start = resp.get("LastEvaluatedKey")
        if not start:
            return names


def template_stats(tenant: str, since: str, until: str, section: str | None = None) -> dict[str, Any]:
    """``GET /api/stats/templates``: every section with stats in the range (or just
    ``section``), by name, each with its versions; at most :data:`MAX_SECTIONS` sections
    (``truncated`` says more exist: ask for one ``section``)."""
    deadline = time.monotonic() + READ_BUDGET_S
    names = [section] if section is not None else sections_with_stats(tenant, since, until, deadline)
    truncated = len(names) > MAX_SECTIONS
    names = names[:MAX_SECTIONS]
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(names)))) as pool:
        found = list(pool.map(lambda s: section_stats(tenant, s, since, until, deadline=deadline), names))
    return {"since": since, "until": until, "sections": [s for s in found if s is not None],
            "truncated": truncated}


def crop_stats(tenant: str, since: str, until: str) -> dict[str, Any]:
    """``GET /api/stats/crops``: the tenant's crop jobs over the range."""
    totals = Totals()
    for record in _query_range(f"{STATS_PREFIX}{tenant}#crop", since, until, time.monotonic() + READ_BUDGET_S):
        totals.add(record)
    shaped = _shape(totals)
    return {"since": since, "until": until,
            "crops": {**totals.counts(), "faces_found": totals.faces_found, "crop_ms": shaped["generation_ms"],
                      "avg_job_duration_ms": shaped["avg_job_duration_ms"]}}


def date_range(since: str | None, until: str | None, *, today: date | None = None) -> tuple[str, str]:
    """Validated ``(since, until)``: ``YYYY-MM-DD`` UTC days, ``until`` defaults to today and
    ``since`` to :data:`DEFAULT_RANGE_DAYS` days ending at ``until``; at most
    :data:`MAX_RANGE_DAYS` days. Raises :class:`InvalidDateRange`."""
    end = _parse_day("until", until) if until is not None else (today or datetime.now(UTC).date())
    start = _parse_day("since", since) if since is not None else end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if start > end:
        raise InvalidDateRange(f"since ({start}) is after until ({end})")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise InvalidDateRange(f"the range is {(end - start).days + 1} days; at most {MAX_RANGE_DAYS} are allowed")
    return start.isoformat(), end.isoformat()


def _parse_day(name: str, value: str) -> date:
    if len(value) != 10 or not value.isascii() or value[4] != "-" or value[7] != "-" \
            or not (value[:4] + value[5:7] + value[8:]).isdigit():
        raise InvalidDateRange(f"{name} must be a date YYYY-MM-DD, got {value[:40]!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidDateRange(f"{name} is not a calendar date: {value!r}") from None


