"""Job and item records: create, read, list, change status, add items.

Layout (docs/architecture.md, one table): ``JOB#<id>/META`` holds the job and its counters;
``JOB#<id>/ITEM#000123`` one item each; ``JOB#<id>/INDEX`` is a small copy of the job's
listing fields and the only record carrying the GSI keys (``GSI1PK = JOBS#<status>``,
``GSI1SK = <tenant>#<created_at>#<job_id>``: a tenant's jobs of one status are one key range,
newest last). Keeping the GSI keys off META matters: with an ``ALL``
projection every counter update of META would otherwise be replicated into one GSI partition
shared by all jobs. The INDEX record changes only at creation and on status changes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from botocore.exceptions import ClientError

from posterflow import config, tenancy, tokens
from posterflow.jobs import _ddb as d
from posterflow.jobs import _pages, lanes
from posterflow.jobs._expr import Expr
from posterflow.jobs.errors import (
    InvalidCursor,
    ItemNotFound,
    ItemTooLarge,
    JobNotFound,
    JobStateConflict,
)
from posterflow.jobs.models import (
    ALLOWED_FROM,
    FINAL_JOB_STATUSES,
    Item,
    ItemStatus,
    Job,
    JobKind,
    JobStatus,
    NewItem,
)

# Inline item inputs stay far below DynamoDB's 400 KB item limit, leaving room for the
# output key, error text, timings and extra fields written later.
MAX_INLINE_INPUT_BYTES = 64 * 1024
MAX_METADATA_BYTES = 32 * 1024
MAX_ERROR_CHARS = 4000
# list_jobs(project_id=): index records read per query, and queries per status partition, per page.
PROJECT_FILTER_PAGE = 200
PROJECT_FILTER_READS = 10

# Job fields set_status may set directly; anything else goes into the job's ``extra`` map.
_SETTABLE_FIELDS = frozenset(
    {
        "error",
        "archive_key",
        "name",
        "template_id",
        "template_section",
        "template_version",
        "notify_email",
        "webhook_url",
    }
)
_INTERNAL_ATTRS = frozenset({"entity"})


def _key_attrs() -> frozenset[str]:
    t = d.spec()
    return frozenset({t.partition_key, t.sort_key, t.gsi_partition_key, t.gsi_sort_key})


def _job_from_item(raw: dict[str, Any]) -> Job:
    values = d.from_item(raw)
    values["expires_at"] = values.pop(d.spec().ttl_attribute, values.get("expires_at"))
    for attr in _key_attrs() | _INTERNAL_ATTRS:
        values.pop(attr, None)
    return Job.model_validate(values)


def _item_from_item(raw: dict[str, Any]) -> Item:
    values = d.from_item(raw)
    for attr in _key_attrs() | _INTERNAL_ATTRS | {d.spec().ttl_attribute}:
        values.pop(attr, None)
    return Item.model_validate(values)


def _json_size(value: Any) -> int:
    return len(json.dumps(value, default=str, separators=(",", ":")).encode())


def truncate_error(error: str | None) -> str | None:
    if error is None or len(error) <= MAX_ERROR_CHARS:
        return error
    return error[: MAX_ERROR_CHARS - 15] + " ...[truncated]"


# ----------------------------------------------------------------------------- jobs


def create_job(
    kind: JobKind,
    total: int | None = None,
    *,
    template_id: str | None = None,
    template_section: str | None = None,
    template_version: int | None = None,
    notify_email: str | None = None,
    webhook_url: str | None = None,
    metadata: dict[str, Any] | None = None,
    name: str | None = None,
    project_id: str | None = None,
    job_id: str | None = None,
    tenant: str | None = None,
    priority: int | None = None,
) -> Job:
    """A new job of ``tenant`` (default: the caller's), status ``queued``. ``total`` may be left
    ``None`` for a streamed input whose size the splitter learns only at the end
    (:func:`set_total`). ``priority`` (1–10 or ``None``, :mod:`posterflow.jobs.lanes`)
    decides the lane of the job's work; anything else is :class:`~posterflow.jobs.lanes.InvalidPriority`."""
    priority = lanes.check_priority(priority)
    if total is not None and not 0 <= total <= d.MAX_ITEMS:
        raise ValueError(f"total must be within 0..{d.MAX_ITEMS}")
    metadata = metadata or {}
    if _json_size(metadata) > MAX_METADATA_BYTES:
        raise ItemTooLarge(f"job metadata is larger than {MAX_METADATA_BYTES} bytes")
    job_id = job_id or uuid.uuid4().hex
    tenant = tenancy.normalise(tenant) if tenant else tenancy.current()
    now = d.now_iso()
    epoch = time.time()
    expires_at = int(epoch) + config.retention_days() * 86400
    t = d.spec()
    fields: dict[str, Any] = {
        "job_id": job_id,
        "kind": kind,
        "status": JobStatus.QUEUED.value,
        "name": name,
        "project_id": project_id,
        "total": total,
        "processed": 0,
        "succeeded": 0,
        "failed": 0,
        "skipped": 0,
        "cancelled": 0,
        "template_id": template_id,
        "template_section": template_section,
        "template_version": template_version,
        "notify_email": notify_email,
        "webhook_url": webhook_url,
        "metadata": metadata,
        "tenant": tenant,
        "priority": priority,
        "token": tokens.job_token(job_id),
        "created_at": now,
        "updated_at": now,
        "last_progress_at": epoch,
        "finalize_round": 0,
        "extra": {},
    }
    meta = {
        t.partition_key: d.job_pk(job_id),
        t.sort_key: d.META,
        "entity": "job",
        t.ttl_attribute: expires_at,
        **fields,
    }
    index = {
        t.partition_key: d.job_pk(job_id),
        t.sort_key: d.INDEX,
        "entity": "job_index",
        t.gsi_partition_key: _gsi_pk(JobStatus.QUEUED),
        t.gsi_sort_key: f"{tenant}#{now}#{job_id}",
        t.ttl_attribute: expires_at,
        "job_id": job_id,
        "kind": kind,
        "status": JobStatus.QUEUED.value,
        "created_at": now,
        "name": name,
        "project_id": project_id,  # list_jobs(project_id=) filters on it
    }
    cond = {"ConditionExpression": "attribute_not_exists(#pk)", "ExpressionAttributeNames": {"#pk": t.partition_key}}
    try:
        d.transact(
            [
                {"Put": {"TableName": d.table(), "Item": d.to_item(meta), **cond}},
                {"Put": {"TableName": d.table(), "Item": d.to_item(index), **cond}},
            ]
        )
    except ClientError as exc:
        if "ConditionalCheckFailed" in d.cancellation_codes(exc):
            raise JobStateConflict(job_id, None, "create it: the job id is taken") from exc
        raise
    return _job_from_item(d.to_item(meta))


def _gsi_pk(status: JobStatus) -> str:
    # Shared with lifecycle.retry_failed, which moves the INDEX record in its own transaction.
    return f"JOBS#{status.value}"


def get_job(job_id: str, *, consistent: bool = True) -> Job:
    raw = (
        d.ddb()
        .get_item(TableName=d.table(), Key=d.key(d.job_pk(job_id), d.META), ConsistentRead=consistent)
        .get("Item")
    )
    if raw is None:
        raise JobNotFound(job_id)
    return _job_from_item(raw)


def find_job(job_id: str) -> Job | None:
    try:
        return get_job(job_id)
    except JobNotFound:
        return None


def owned_job(job_id: str, tenant: str | None = None) -> Job:
    """The job if it belongs to ``tenant`` (default: the caller's); another tenant's job is
    :class:`JobNotFound`, exactly as a job that does not exist, so ids reveal nothing."""
    job = find_job(job_id)
    if job is None or job.tenant != (tenant or tenancy.current()):
        raise JobNotFound(job_id)
    return job


def is_cancelled(job_id: str) -> bool:
    """Workers call this before doing an item's work; a cancelled job's pending items are then
    finished as ``cancelled``. A missing job counts as cancelled (it expired or never was)."""
    job = find_job(job_id)
    return job is None or job.status == JobStatus.CANCELLED


def set_status(
    job_id: str,
    status: JobStatus | str,
    *,
    allowed_from: Iterable[JobStatus] | None = None,
    extra_condition: tuple[str, dict[str, str], dict[str, Any]] | None = None,
    bump_finalize_round: bool = False,
    **fields: Any,
) -> Job:
    """Move the job to ``status`` only from the statuses :data:`ALLOWED_FROM` lists (or
    ``allowed_from``), so a final status is never overwritten by a late writer; raises
    :class:`JobStateConflict` otherwise. ``fields`` are set on the job in the same write
    (``error``, ``archive_key`` ... others land in ``job.extra``)."""
    status = JobStatus(status)
    allowed = sorted(s.value for s in (allowed_from if allowed_from is not None else ALLOWED_FROM[status]))
    now = d.now_iso()
    t = d.spec()
    meta = Expr()
    meta.set("status", status.value).set("updated_at", now).set("last_progress_at", time.time())
    if status == JobStatus.PROCESSING:
        meta.set_if_absent("started_at", now).remove("completed_at")
    if status in FINAL_JOB_STATUSES:
        meta.set("completed_at", now)
    if bump_finalize_round:
        meta.add("finalize_round", 1)
    for field, value in fields.items():
        if field in _SETTABLE_FIELDS:
            if value is None:
                meta.remove(field)
            else:
                meta.set(field, truncate_error(value) if field == "error" else value)
        else:
            meta.set(f"extra.{field}", value)
    condition = f"attribute_exists({meta.name(t.partition_key)}) AND {meta.in_('status', allowed)}"
    if extra_condition is not None:
        text, cond_names, cond_values = extra_condition
        condition += f" AND ({text})"
        meta.names.update(cond_names)
        meta.values.update({k: d.av(v) for k, v in cond_values.items()})
    index = Expr().set("status", status.value).set(t.gsi_partition_key, _gsi_pk(status))
    index_cond = f"attribute_exists({index.name(t.partition_key)})"
    pk = d.job_pk(job_id)
    try:
        d.transact(
            [
                {"Update": {"TableName": d.table(), "Key": d.key(pk, d.META), **meta.params(condition)}},
                {"Update": {"TableName": d.table(), "Key": d.key(pk, d.INDEX), **index.params(index_cond)}},
            ]
        )
    except ClientError as exc:
        if "ConditionalCheckFailed" not in d.cancellation_codes(exc):
            raise
        current = find_job(job_id)
        if current is None:
            raise JobNotFound(job_id) from exc
        raise JobStateConflict(job_id, current.status, f"move to {status.value}") from exc
    return get_job(job_id)


def touch(job_id: str) -> None:
    """Record progress without changing counters (e.g. the splitter is still reading)."""
    e = Expr().set("last_progress_at", time.time()).set("updated_at", d.now_iso())
    cond = f"attribute_exists({e.name(d.spec().partition_key)})"
    try:
        d.ddb().update_item(TableName=d.table(), Key=d.key(d.job_pk(job_id), d.META), **e.params(cond))
    except ClientError as exc:
        if d.is_conditional_failure(exc):
            raise JobNotFound(job_id) from exc
        raise


def list_jobs(
    status: JobStatus | str | None = None,
    *,
    limit: int = 50,
    cursor: str | None = None,
    tenant: str | None = None,
    all_tenants: bool = False,
    project_id: str | None = None,
) -> tuple[list[Job], str | None]:
    """The jobs of ``tenant`` (default: the caller's) newest first, optionally of one status;
    ``cursor`` continues a previous page. ``all_tenants`` lists every tenant's (the stall
    sweep; the order is then by tenant, then age).

    Each status is one GSI partition; without a status filter the newest ``limit`` of every
    status partition are merged, and the cursor is the last returned sort key, so it works the
    same for both shapes. The cursor is bound to the tenant: another tenant's is refused.

    ``project_id`` keeps only that project's jobs: a filter on the index query (the INDEX
    record carries the project), read on until each partition gave ``limit`` matches or
    :data:`PROJECT_FILTER_READS` reads. A page is then only what is known to be complete: the
    jobs above the highest point a partition's reads stopped at, so a page may be short, and
    ``next`` continues from that point (no job skipped or repeated). The cursor is bound to
    the project too."""
    if not 1 <= limit <= 1000:
        raise ValueError("limit must be within 1..1000")
    wanted = [JobStatus(status)] if status is not None else list(JobStatus)
    owner = "*" if all_tenants else (tenant or tenancy.current())
    scope = f"jobs:{owner}:" + (wanted[0].value if status is not None else "*")
    if project_id is not None:
        scope += f":project:{project_id}"
    before = d.decode_cursor(cursor, scope) if cursor else None
    if before is not None and not all_tenants and not before.startswith(owner + "#"):
        raise InvalidCursor("cursor belongs to another listing")  # an edited position
    t = d.spec()
    found: list[tuple[str, str]] = []
    more = False
    floor: str | None = None  # the highest sort key a filtered partition's reads stopped at
    for s in wanted:
        e = Expr()
        condition = f"{e.name(t.gsi_partition_key)} = {e.value(_gsi_pk(s))}"
        if all_tenants:
            if before is not None:
                condition += f" AND {e.name(t.gsi_sort_key)} < {e.value(before)}"
        elif before is not None:
            # One sort-key condition per query: the range from the tenant's first key up to the
            # cursor, which is itself dropped below.
            condition += f" AND {e.name(t.gsi_sort_key)} BETWEEN {e.value(owner + '#')} AND {e.value(before)}"
        else:
            condition += f" AND begins_with({e.name(t.gsi_sort_key)}, {e.value(owner + '#')})"
        params: dict[str, Any] = {
            "TableName": d.table(), "IndexName": t.gsi_name, "KeyConditionExpression": condition,
            "ScanIndexForward": False, "Limit": limit + (1 if before is not None and not all_tenants else 0),
        }
        if project_id is not None:
            params["FilterExpression"] = f"{e.name('project_id')} = {e.value(project_id)}"
            params["Limit"] = max(params["Limit"], PROJECT_FILTER_PAGE)
        params["ExpressionAttributeNames"], params["ExpressionAttributeValues"] = e.names, e.values
        matches, reads = 0, 0
        while True:
            resp = d.ddb().query(**params)
            reads += 1
            for raw in resp.get("Items", []):
                values = d.from_item(raw)
                if values[t.gsi_sort_key] != before:
                    found.append((values[t.gsi_sort_key], values["job_id"]))
                    matches += 1
            last = resp.get("LastEvaluatedKey")
            if project_id is None or last is None:
                more = more or last is not None
                break
            if matches >= limit or reads >= PROJECT_FILTER_READS:
                stopped = str(d.from_item(last)[t.gsi_sort_key])
                floor = stopped if floor is None or stopped > floor else floor
                break
            params["ExclusiveStartKey"] = last
    found.sort(reverse=True)
    if floor is not None:
        # Below the floor some partition was not read: only the jobs above it are known.
        known = [f for f in found if f[0] >= floor]
        more = True
        if len(known) <= limit:
            found = known
    # A job that changes status between two partition queries shows up in both: keep one.
    newest: dict[str, str] = {}
    for sort_key, job_id in found:
        newest.setdefault(job_id, sort_key)
    found = [(sort_key, job_id) for job_id, sort_key in newest.items()]
    more = more or len(found) > limit
    page = found[:limit]
    jobs_by_id = {job.job_id: job for job in _batch_get_jobs([job_id for _, job_id in page])}
    # The index lags a status change by a moment; the job record itself is the truth.
    jobs = [jobs_by_id[job_id] for _, job_id in page
            if job_id in jobs_by_id and jobs_by_id[job_id].status in wanted]
    position = page[-1][0] if page and (len(found) > limit or floor is None) else floor
    next_cursor = d.encode_cursor(scope, position) if more and position is not None else None
    return jobs, next_cursor


def _batch_get_jobs(job_ids: Sequence[str]) -> list[Job]:
    jobs: list[Job] = []
    for start in range(0, len(job_ids), 100):
        request: dict[str, Any] = {
            d.table(): {
                "Keys": [d.key(d.job_pk(j), d.META) for j in job_ids[start : start + 100]],
                "ConsistentRead": True,
            }
        }
        attempt = 0
        while request:
            resp = d.ddb().batch_get_item(RequestItems=request)
            jobs.extend(_job_from_item(raw) for raw in resp.get("Responses", {}).get(d.table(), []))
            request = resp.get("UnprocessedKeys") or {}
            attempt += 1
            if request:
                time.sleep(min(1.0, 0.05 * 2**attempt))
    return jobs


def list_active_jobs() -> Iterator[Job]:
    """Every queued or processing job (for the stall sweep)."""
    for status in (JobStatus.QUEUED, JobStatus.PROCESSING):
        cursor: str | None = None
        while True:
            jobs, cursor = list_jobs(status, limit=100, cursor=cursor, all_tenants=True)
            yield from jobs
            if cursor is None:
                break


# ---------------------------------------------------------------------------- items


def _new_item_record(job: Job, item: NewItem, now: str) -> dict[str, Any]:
    if item.input is not None and _json_size(item.input) > MAX_INLINE_INPUT_BYTES:
        raise ItemTooLarge(
            f"item {item.item_id}: input is larger than {MAX_INLINE_INPUT_BYTES} bytes; "
            "store it in S3 and pass input_key"
        )
    t = d.spec()
    return d.to_item(
        {
            t.partition_key: d.job_pk(job.job_id),
            t.sort_key: d.item_sk(item.item_id),
            "entity": "item",
            t.ttl_attribute: job.expires_at,
            "job_id": job.job_id,
            "item_id": item.item_id,
            "entity_id": item.entity_id,
            "status": ItemStatus.PENDING.value,
            "input": item.input,
            "input_key": item.input_key,
            "attempts": 0,
            "timings": {},
            "extra": {},
            "created_at": now,
            "updated_at": now,
        }
    )


def put_items(job_id: str, items: Iterable[NewItem], *, if_absent: bool = False) -> int:
    """Store pending items; returns how many were written.

    The default path uses BatchWriteItem (25 per call), which overwrites: use it for items
    that are certainly new. ``if_absent=True`` writes each item only if it does not exist yet
    (one conditional PutItem each), for the chunk a resumed splitter may have written before
    its last checkpoint — an overwrite there could reset a finished item to pending and let
    it count twice."""
    job = get_job(job_id)
    now = d.now_iso()
    records = [_new_item_record(job, item, now) for item in items]
    if if_absent:
        written = 0
        t = d.spec()
        for record in records:
            try:
                d.ddb().put_item(
                    TableName=d.table(),
                    Item=record,
                    ConditionExpression="attribute_not_exists(#pk)",
                    ExpressionAttributeNames={"#pk": t.partition_key},
                )
                written += 1
            except ClientError as exc:
                if not d.is_conditional_failure(exc):
                    raise
    else:
        for start in range(0, len(records), 25):
            _batch_write([{"PutRequest": {"Item": rec}} for rec in records[start : start + 25]])
        written = len(records)
    if records:
        touch(job_id)
    return written


def _batch_write(requests: list[dict[str, Any]]) -> None:
    pending: dict[str, Any] = {d.table(): requests}
    attempt = 0
    while pending:
        resp = d.ddb().batch_write_item(RequestItems=pending)
        pending = resp.get("UnprocessedItems") or {}
        attempt += 1
        if pending:
            if attempt > 12:
                raise RuntimeError("BatchWriteItem kept returning unprocessed items")
            time.sleep(min(2.0, 0.05 * 2**attempt))


def get_item(job_id: str, item_id: int, *, consistent: bool = True) -> Item:
    raw = (
        d.ddb()
        .get_item(TableName=d.table(), Key=d.key(d.job_pk(job_id), d.item_sk(item_id)), ConsistentRead=consistent)
        .get("Item")
    )
    if raw is None:
        raise ItemNotFound(job_id, item_id)
    return _item_from_item(raw)


def list_items(
    job_id: str,
    *,
    limit: int = 1000,
    cursor: str | None = None,
    status: ItemStatus | str | None = None,
    consistent: bool = False,
) -> tuple[list[Item], str | None]:
    """One page of a job's items in item-id order; ``next_cursor`` is ``None`` at the end."""
    if not 1 <= limit <= 10_000:
        raise ValueError("limit must be within 1..10000")
    scope = f"items:{job_id}:{status or '*'}"
    raws, next_cursor = _pages.job_records(
        job_id, d.ITEM_PREFIX, scope=scope, limit=limit, cursor=cursor, consistent=consistent,
        where=("status", ItemStatus(status).value) if status is not None else None)
    return [_item_from_item(raw) for raw in raws], next_cursor


def iter_items(
    job_id: str, *, status: ItemStatus | str | None = None, page_size: int = 1000, consistent: bool = False
) -> Iterator[Item]:
    cursor: str | None = None
    while True:
        items, cursor = list_items(job_id, limit=page_size, cursor=cursor, status=status, consistent=consistent)
        yield from items
        if cursor is None:
            return


def count_items(job_id: str) -> int:
    t = d.spec()
    e = Expr()
    condition = (
        f"{e.name(t.partition_key)} = {e.value(d.job_pk(job_id))} AND "
        f"begins_with({e.name(t.sort_key)}, {e.value(d.ITEM_PREFIX)})"
    )
    total = 0
    kwargs: dict[str, Any] = {}
    while True:
        resp = d.ddb().query(
            TableName=d.table(),
            KeyConditionExpression=condition,
            Select="COUNT",
            ExpressionAttributeNames=e.names,
            ExpressionAttributeValues=e.values,
            ConsistentRead=True,
            **kwargs,
        )
        total += int(resp.get("Count", 0))
        if "LastEvaluatedKey" not in resp:
            return total
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
