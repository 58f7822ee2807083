"""Job routes: seed status shape, jobs list, paginated results, cancel, retry, queue stats."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from posterflow import aws, config, jobs
from posterflow.api.errors import ApiError
from posterflow.api.links import job_links, presigned_get
from posterflow.errors import Reason
from posterflow.finalize import merge_pdf
from posterflow.jobs import enqueue, lanes
from posterflow.jobs.retry import plan_for
from posterflow.resources import stack_spec

router = Router()

# The seeds call a finished poster "completed"; our item status is "succeeded".
SEED_ITEM_STATUS = {"succeeded": "completed"}


def result_json(item: jobs.Item) -> dict[str, Any]:
    return {
        "item_id": item.item_id,
        "entity_id": item.entity_id,
        "url": presigned_get(item.output_key) if item.output_key else None,
        "key": item.output_key,
        "status": SEED_ITEM_STATUS.get(str(item.status), str(item.status)),
        "generation_time_ms": item.generation_time_ms,
        "error": item.error,
        "error_code": item.error_code,
        **({"face": item.extra} if item.extra and "face_detected" in item.extra else {}),
    }


def merged_pdf_json(job: jobs.Job) -> dict[str, Any]:
    """A ``merge_pdf`` batch's merged PDF once finalize has written it: ``merged_pdf_urls`` (one
    per part of at most ``POSTERFLOW_MERGED_PDF_PART_PAGES`` pages) and ``merged_pdf_url`` when
    it is one file; nothing for other jobs."""
    if not job.extra.get("merge_pdf"):
        return {}
    record = merge_pdf.merged_record(job)
    parts = record.get("parts", []) if record.get("done") else []
    urls = [presigned_get(str(p["key"])) for p in parts]
    return {"merge_pdf": True, "merged_pdf_url": urls[0] if len(urls) == 1 else None, "merged_pdf_urls": urls,
            "merged_pdf_pages": record.get("pages") if record.get("done") else None}


def job_json(job: jobs.Job) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "kind": str(job.kind),
        "name": job.name,
        "project_id": job.project_id,
        "status": str(job.status),
        "template_id": job.template_id,
        "template_section": job.template_section,
        "template_version": job.template_version,
        "priority": job.priority,
        "lane": lanes.lane_of(job.priority),
        "total_items": job.total,
        "processed_items": job.processed,
        "success_count": job.succeeded,
        "failure_count": job.failed,
        "skipped_count": job.skipped,
        "cancelled_count": job.cancelled,
        "progress": job.percent,
        # The entity of the latest item to land (progress frames carry it too), while the job runs.
        "current_entity": None if job.is_final else job.current_entity,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
        "error": job.error,
        "metadata": job.metadata,
        "archive_url": presigned_get(job.archive_key) if job.archive_key else None,
        **merged_pdf_json(job),
        # The API is key-protected and server-to-server: whoever may read the job may follow it.
        **job_links(job),
    }


# The ``status`` filter of a job's results, in the order error details name them.
RESULT_STATUSES = ("failed", "succeeded", "skipped", "cancelled", "pending")
LOG_LEVELS = jobs.LOG_LEVELS


def _limit(limit: int) -> int:
    if not 1 <= limit <= 1000:
        raise ApiError(Reason.INVALID_LIMIT, "limit must be between 1 and 1000", {"min": 1, "max": 1000})
    return limit


def _with_results(job_id: str, limit: int, cursor: str | None, status: str | None) -> dict[str, Any]:
    _limit(limit)
    if status is not None and status not in RESULT_STATUSES:
        raise ApiError(Reason.INVALID_STATUS, f"unknown item status {status!r}", {"allowed": list(RESULT_STATUSES)})
    job = jobs.owned_job(job_id)
    # The cursor is scoped to the job and the filter: another's is invalid_cursor.
    items, next_cursor = jobs.list_items(job_id, limit=limit, cursor=cursor, status=status)
    return {**job_json(job), "results": [result_json(i) for i in items], "next": next_cursor}


@router.get("/api/templates/job/<job_id>")
def seed_status(job_id: str, limit: Annotated[int, Query()] = 1000,
                cursor: Annotated[str | None, Query()] = None,
                status: Annotated[str | None, Query()] = None) -> dict[str, Any]:
    return _with_results(job_id, limit, cursor, status)


@router.get("/api/jobs/<job_id>")
def job_status(job_id: str, limit: Annotated[int, Query()] = 1000,
               cursor: Annotated[str | None, Query()] = None,
               status: Annotated[str | None, Query()] = None) -> dict[str, Any]:
    return _with_results(job_id, limit, cursor, status)


@router.get("/api/jobs/<job_id>/logs")
def job_logs(job_id: str, level: Annotated[str | None, Query()] = None, limit: Annotated[int, Query()] = 100,
             cursor: Annotated[str | None, Query()] = None) -> dict[str, Any]:
    """The job's log lines, newest first, optionally of one level (case-insensitive)."""
    _limit(limit)
    if level is not None and level.upper() not in LOG_LEVELS:
        raise ApiError(Reason.INVALID_LEVEL, f"unknown log level {level!r}", {"allowed": list(LOG_LEVELS)})
    jobs.owned_job(job_id)
    logs, next_cursor = jobs.list_logs(job_id, limit=limit, cursor=cursor, newest_first=True,
                                       level=level.upper() if level else None)
    return {"job_id": job_id,
            "logs": [{"timestamp": x.created_at, "level": x.level, "message": x.message, "details": x.details}
                     for x in logs],
            "next": next_cursor}


@router.get("/api/jobs")
def list_jobs(status: Annotated[str | None, Query()] = None, limit: Annotated[int, Query()] = 50,
              cursor: Annotated[str | None, Query()] = None,
              project_id: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, Any]:
    """The caller's jobs, newest first; ``project_id`` keeps one project's (a page may then be
    short: follow ``next`` until it is null)."""
    if status is not None and status not in {s.value for s in jobs.JobStatus}:
        raise ApiError(Reason.INVALID_STATUS, f"unknown status {status!r}",
                       {"allowed": [s.value for s in jobs.JobStatus]})
    if not 1 <= limit <= 1000:
        raise ApiError(Reason.INVALID_LIMIT, "limit must be between 1 and 1000")
    found, next_cursor = jobs.list_jobs(status, limit=limit, cursor=cursor,  # InvalidCursor: invalid_cursor
                                        project_id=project_id)
    return {"jobs": [job_json(j) for j in found], "next": next_cursor}


@router.post("/api/jobs/<job_id>/cancel")
def cancel(job_id: str) -> dict[str, Any]:
    jobs.owned_job(job_id)
    outcome = jobs.cancel_job(job_id)
    return {"success": True, "job_id": job_id, **outcome.model_dump(mode="json"),
            "job": job_json(jobs.get_job(job_id))}


@router.post("/api/jobs/<job_id>/retry")
def retry(job_id: str) -> dict[str, Any]:
    plan = plan_for(jobs.owned_job(job_id))
    items = jobs.retry_failed(job_id, retryable=plan.retryable)
    enqueue.send_messages(plan.queue, plan.messages(items))
    jobs.add_log(job_id, "INFO", f"retrying {len(items)} failed item(s)")
    return {"success": True, "job_id": job_id, "retried": len(items), **job_links(jobs.get_job(job_id))}


@router.get("/api/batch/queue-stats")
def queue_stats() -> dict[str, Any]:
    """Per work queue (``split``, ``render``, ``crop``): ``waiting``, ``in_flight`` and ``dlq``
    (messages that exhausted their retries), summed over its lanes, and ``lanes``: the same per
    priority lane with the lane's queue name."""
    sqs, spec = aws.client("sqs"), stack_spec()

    def depth(url: str) -> tuple[int, int]:
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])

    stats: dict[str, dict[str, Any]] = {}
    for q in spec.queues:
        waiting, in_flight = depth(config.queue_url(q.key))
        dead, _ = depth(config.queue_url(f"{q.key}_dlq"))
        one = {"waiting": waiting, "in_flight": in_flight, "dlq": dead}
        # A lane's numbers count under its work's key (render, crop), as one queue's did.
        work = spec.lane(q.consumer, "normal").key if q.lane and q.consumer else q.key
        total = stats.setdefault(work, {"waiting": 0, "in_flight": 0, "dlq": 0})
        for k, v in one.items():
            total[k] += v
        if q.lane:
            total.setdefault("lanes", {})[q.lane] = {"queue": q.name, **one,
                                                     "max_concurrency": q.max_concurrency}
    return {"queues": stats}
