"""Per-job log records (``JOB#<id>/LOG#<ts>#<n>``), like the seeds' ``template_generation_logs``."""

from __future__ import annotations

import itertools
import json
import secrets
from typing import Any

from posterflow.jobs import _ddb as d
from posterflow.jobs._expr import Expr
from posterflow.jobs.models import JobLog

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MAX_MESSAGE_CHARS = 2000
MAX_DETAILS_BYTES = 16 * 1024

# Same-microsecond logs from one process keep their order through the counter; the random
# part keeps logs of different processes (workers of one job) from sharing a key.
_sequence = itertools.count()


def add_log(
    job_id: str, level: str, message: str, details: dict[str, Any] | None = None, *, expires_at: int | None = None
) -> JobLog:
    level = level.upper()
    if level == "WARN":
        level = "WARNING"
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}")
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


def list_logs(
    job_id: str, *, limit: int = 100, cursor: str | None = None, newest_first: bool = False
) -> tuple[list[JobLog], str | None]:
    if not 1 <= limit <= 1000:
        raise ValueError("limit must be within 1..1000")
    scope = f"logs:{job_id}:{'desc' if newest_first else 'asc'}"
    t = d.spec()
    e = Expr()
    condition = (
        f"{e.name(t.partition_key)} = {e.value(d.job_pk(job_id))} AND "
        f"begins_with({e.name(t.sort_key)}, {e.value(d.LOG_PREFIX)})"
    )
    kwargs: dict[str, Any] = {}
    if cursor:
        kwargs["ExclusiveStartKey"] = d.key(d.job_pk(job_id), d.decode_cursor(cursor, scope))
    resp = d.ddb().query(
        TableName=d.table(),
        KeyConditionExpression=condition,
        ExpressionAttributeNames=e.names,
        ExpressionAttributeValues=e.values,
        ScanIndexForward=not newest_first,
        Limit=limit,
        **kwargs,
    )
    logs = []
    for raw in resp.get("Items", []):
        v = d.from_item(raw)
        logs.append(
            JobLog(
                job_id=job_id,
                log_id=v[t.sort_key],
                level=v["level"],
                message=v["message"],
                details=v.get("details"),
                created_at=v["created_at"],
            )
        )
    lek = resp.get("LastEvaluatedKey")
    return logs, (d.encode_cursor(scope, lek[t.sort_key]["S"]) if lek else None)
