"""Progress event frames: the JSON objects posted to WebSocket clients.

Every frame has an ``event`` field. Frames derived from the job record also carry ``round``
and ``processed`` so a client (and the broadcaster's per-connection floor) can order them.
Field names follow the library (``processed``, ``succeeded``) and repeat the seeds' names
(``processed_items``, ``success_count`` ...) so seed clients keep working.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

FINAL_STATUSES = frozenset({"completed", "completed_with_errors", "failed", "cancelled"})
COMPLETED_STATUSES = frozenset({"completed", "completed_with_errors"})

Presign = Callable[[str], str]

# A rate needs this long between the first landed item and the latest one.
MIN_RATE_WINDOW_S = 1.0


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def order_key(job: Mapping[str, Any]) -> tuple[int, int]:
    """How far a job image is: a retry starts a new round and lowers ``processed``."""
    return _int(job.get("finalize_round")), _int(job.get("processed"))


def rate_and_eta(job: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """Items per second since the job started (its first landed item) and the seconds left
    at that rate. Computed from the record alone, so any function instance gets the same."""
    processed = _int(job.get("processed"))
    total = job.get("total")
    start = _epoch(job.get("started_at")) or _epoch(job.get("created_at"))
    last = job.get("last_progress_at")
    if start is None or not isinstance(last, int | float) or processed <= 0:
        return None, None
    elapsed = float(last) - start
    if elapsed < MIN_RATE_WINDOW_S:
        # The first batch lands all at once: items over a few milliseconds is no rate.
        return None, None
    rate = processed / elapsed
    if not isinstance(total, int) or rate <= 0:
        return round(rate, 3), None
    return round(rate, 3), round(max(0, total - processed) / rate, 1)


def percent(job: Mapping[str, Any]) -> float:
    total = job.get("total")
    if not isinstance(total, int):
        return 0.0
    if total == 0:
        return 100.0
    return round(100.0 * min(_int(job.get("processed")), total) / total, 2)


def job_fields(job: Mapping[str, Any]) -> dict[str, Any]:
    """The counters of a job image, under both the library's and the seeds' names."""
    rate, eta = rate_and_eta(job)
    total = job.get("total")
    return {
        "job_id": job.get("job_id"),
        "status": job.get("status"),
        "round": _int(job.get("finalize_round")),
        "processed": _int(job.get("processed")),
        "total": total,
        "succeeded": _int(job.get("succeeded")),
        "failed": _int(job.get("failed")),
        "skipped": _int(job.get("skipped")),
        "cancelled": _int(job.get("cancelled")),
        "percent": percent(job),
        "items_per_s": rate,
        "eta_s": eta,
        "processed_items": _int(job.get("processed")),
        "total_items": total,
        "success_count": _int(job.get("succeeded")),
        "failure_count": _int(job.get("failed")),
        "progress": percent(job),
    }


def current_entity(items: Sequence[Mapping[str, Any]]) -> str | None:
    """The entity the job is at (seed 002's "current recipient being processed"): that of the
    latest item to land among ``items`` (stream order), None when none landed."""
    for raw in reversed(items):
        if raw.get("entity_id") not in (None, ""):
            return str(raw["entity_id"])
    return None


def progress(job: Mapping[str, Any], current_entity: str | None = None) -> dict[str, Any]:
    return {"event": "progress", **job_fields(job), "current_entity": current_entity, "ts": time.time()}


def status(job: Mapping[str, Any], previous: str | None) -> dict[str, Any]:
    return {
        "event": "status",
        **job_fields(job),
        "previous": previous,
        "final": job.get("status") in FINAL_STATUSES,
        "error": job.get("error"),
    }


def merged_pdf_keys(job: Mapping[str, Any]) -> list[str] | None:
    """The S3 keys of a ``merge_pdf`` job's merged PDF parts for its round (what finalize's merge
    step recorded in ``extra.merged_pdf_r<round>``, posterflow.finalize.merge_pdf); ``[]`` while
    there are none, None for other jobs."""
    extra = job.get("extra")
    if not isinstance(extra, Mapping) or not extra.get("merge_pdf"):
        return None
    record = extra.get(f"merged_pdf_r{_int(job.get('finalize_round'))}")
    if not isinstance(record, Mapping) or not record.get("done"):
        return []
    parts = [p for p in record.get("parts") or [] if isinstance(p, Mapping) and p.get("key")]
    return [str(p["key"]) for p in sorted(parts, key=lambda p: _int(p.get("part")))]


def merged_pdf_fields(keys: Sequence[str] | None, presign: Presign | None) -> dict[str, Any]:
    """``merged_pdf_urls`` and ``merged_pdf_url`` (the one link when it is one file), presigned
    as the job status route does; nothing for a job without ``merge_pdf``."""
    if keys is None:
        return {}
    urls = [presign(k) for k in keys] if presign else []
    return {"merged_pdf_url": urls[0] if len(urls) == 1 else None, "merged_pdf_urls": urls}


def job_completed(job: Mapping[str, Any], presign: Presign | None) -> dict[str, Any]:
    archive_key = job.get("archive_key")
    started = _epoch(job.get("started_at")) or _epoch(job.get("created_at"))
    finished = _epoch(job.get("completed_at"))
    return {
        "event": "job_completed",
        **job_fields(job),
        "total_count": job.get("total"),
        "archive_url": presign(archive_key) if archive_key and presign else None,
        **merged_pdf_fields(merged_pdf_keys(job), presign),
        "duration_s": round(finished - started, 3) if started is not None and finished is not None else None,
    }


def job_failed(job: Mapping[str, Any]) -> dict[str, Any]:
    return {"event": "job_failed", **job_fields(job), "error": job.get("error") or "job failed"}


def item(raw: Mapping[str, Any], presign: Presign | None) -> dict[str, Any]:
    """One finished item, in the shape of the seeds' ``poster_completed``."""
    status_ = raw.get("status")
    key = raw.get("output_key")
    url = presign(key) if key and presign else None
    timings = raw.get("timings") or {}
    total_ms = timings.get("total_ms") if isinstance(timings, Mapping) else None
    return {
        "item_id": raw.get("item_id"),
        "entity_id": raw.get("entity_id"),
        "status": "completed" if status_ == "succeeded" else status_,
        "success": status_ == "succeeded",
        "url": url,
        "poster_url": url,
        "error": raw.get("error"),
        "error_code": raw.get("error_code"),
        "generation_time_ms": round(total_ms) if isinstance(total_ms, int | float) else None,
    }


def items_completed(job_id: str, items: Sequence[dict[str, Any]], *, alias: str = "item_completed") -> dict[str, Any]:
    """A batch of finished items in one frame. The last item's fields are repeated at the top
    level, so a seed client reading ``entity_id`` / ``poster_url`` / ``success`` still works."""
    last = items[-1] if items else {}
    return {
        "event": alias,
        "job_id": job_id,
        "count": len(items),
        "items": list(items),
        "entity_id": last.get("entity_id"),
        "poster_url": last.get("poster_url"),
        "success": last.get("success"),
        "error": last.get("error"),
    }


def log(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "event": "log",
        "job_id": raw.get("job_id"),
        "level": raw.get("level"),
        "message": raw.get("message"),
        "details": raw.get("details"),
        "created_at": raw.get("created_at"),
    }


def connected(connection_id: str, snapshot: Mapping[str, Any]) -> dict[str, Any]:
    return {"event": "connected", "connection_id": connection_id, **snapshot}


def subscribed(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    return {"event": "subscribed", **snapshot}


def heartbeat(job_ids: Sequence[str] = ()) -> dict[str, Any]:
    return {"event": "heartbeat", "ts": time.time(), "job_ids": list(job_ids)}


def error(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"event": "error", "error": {"code": code, "message": message, "details": details or None}}
