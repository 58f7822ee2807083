"""Per-job log records (``JOB#<id>/LOG#<ts>#<n>``), like the seeds' ``template_generation_logs``."""

from __future__ import annotations

import itertools
import json
import logging
import secrets
from collections.abc import Iterable
from typing import Any

from posterflow.jobs import _ddb as d
from posterflow.jobs import _pages
from posterflow.jobs.models import ItemOutcome, ItemStatus, JobLog

_log = logging.getLogger(__name__)

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MAX_MESSAGE_CHARS = 2000
MAX_DETAILS_BYTES = 16 * 1024

# Same-microsecond logs from one process keep their order through the counter; the random
# part keeps logs of different processes (workers of one job) from sharing a key.
_sequence = itertools.count()


def add_log(
    job_id: str, level: str, message: str, details: dict[str, Any] | None = None, *, expires_at: int | None = None
) -> JobLog:
    level = normalise_level(level)
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 15] + " ...[truncated]"
    if details is not None:
        text = json.dumps(details, default=str)
        if len(text.encode()) > MAX_DETAILS_BYTES:
            details = {"truncated": True, "preview": text[:1000]}
        else:
            # Round-trip through JSON so any value (datetimes, paths) is stored as text.
            details = json.loads(text)
    now = d.now_iso()
    sk = f"{d.LOG_PREFIX}{now}#{next(_sequence) % 1_000_000:06d}{secrets.token_hex(2)}"
    if expires_at is None:
        from posterflow.jobs.store import find_job  # a cycle-free import: store does not import logs

        job = find_job(job_id)
        expires_at = job.expires_at if job is not None else None
    t = d.spec()
    record = {
        t.partition_key: d.job_pk(job_id),
        t.sort_key: sk,
        "entity": "log",
        "job_id": job_id,
        "level": level,
        "message": message,
        "details": details,
        "created_at": now,
        t.ttl_attribute: expires_at,
    }
    d.ddb().put_item(TableName=d.table(), Item=d.to_item(record))
    return JobLog(job_id=job_id, log_id=sk, level=level, message=message, details=details, created_at=now)


def normalise_level(level: str) -> str:
    """``level`` as stored (upper case, ``WARN`` is ``WARNING``); :class:`ValueError` if unknown."""
    level = level.upper()
    if level == "WARN":
        level = "WARNING"
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}")
    return level


def list_logs(
    job_id: str,
    *,
    limit: int = 100,
    cursor: str | None = None,
    newest_first: bool = False,
    level: str | None = None,
) -> tuple[list[JobLog], str | None]:
    """One page of a job's logs, oldest (or newest) first, optionally of one ``level``; the
    cursor belongs to that listing (job, order and level) and is refused by any other."""
    if not 1 <= limit <= 1000:
        raise ValueError("limit must be within 1..1000")
    level = normalise_level(level) if level is not None else None
    scope = f"logs:{job_id}:{'desc' if newest_first else 'asc'}:{level or '*'}"
    t = d.spec()
    raws, next_cursor = _pages.job_records(job_id, d.LOG_PREFIX, scope=scope, limit=limit, cursor=cursor,
                                           where=("level", level) if level is not None else None,
                                           newest_first=newest_first)
    logs = []
    for raw in raws:
        v = d.from_item(raw)
        logs.append(JobLog(job_id=job_id, log_id=v[t.sort_key], level=v["level"], message=v["message"],
                           details=v.get("details"), created_at=v["created_at"]))
    return logs, next_cursor


# Failed items named per log line, and the characters of each one's error kept in its details
# (a line's details stay well under MAX_DETAILS_BYTES).
FAILED_PER_LINE = 50
FAILED_ERROR_CHARS = 200


def log_failed_items(job_id: str, outcomes: Iterable[ItemOutcome], *, source: str) -> None:
    """One ERROR line per :data:`FAILED_PER_LINE` failed items among ``outcomes``, naming each
    item with its reason: ``details.items`` is ``[{"item_id", "error_code", "error"}]``.

    Best effort: the items are already recorded, so a failed log write is only reported to the
    function's own log (a worker must not redeliver a batch for it)."""
    failed = [o for o in outcomes if o.status == ItemStatus.FAILED]
    for start in range(0, len(failed), FAILED_PER_LINE):
        chunk = failed[start:start + FAILED_PER_LINE]
        named = ", ".join(f"{o.item_id} ({o.error_code.code if o.error_code else 'unknown'})" for o in chunk)
        items = [{"item_id": o.item_id, "error_code": o.error_code.code if o.error_code else None,
                  "error": (o.error or "")[:FAILED_ERROR_CHARS]} for o in chunk]
        try:
            add_log(job_id, "ERROR", f"{len(chunk)} item(s) failed ({source}): {named}",
                    {"source": source, "items": items})
        except Exception:
            _log.warning("could not log %d failed item(s) of job %s", len(chunk), job_id, exc_info=True)
