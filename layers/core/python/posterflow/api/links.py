"""The links a job-creating answer hands back: where to follow the job (status endpoint,
Server-Sent Events stream and WebSocket, each with its token) and presigned GETs of its outputs."""

from __future__ import annotations

from typing import Any

from posterflow import aws, config, jobs

LINK_TTL_S = 7 * 24 * 3600


def job_links(job: jobs.Job) -> dict[str, Any]:
    ws = config.websocket_url()
    return {
        "status_endpoint": f"/api/templates/job/{job.job_id}",
        # Server-Sent Events (posterflow.progress.sse): the token in the query, as EventSource
        # cannot send headers; /api/batch/jobs/{id}/stream (seed 000's path) serves the same.
        "sse_endpoint": f"/api/templates/job/{job.job_id}/stream?token={job.token}",
        "websocket_url": f"{ws}/?job_id={job.job_id}&token={job.token}" if ws else None,
        "token": job.token,
    }


def presigned_get(key: str, expires_s: int = LINK_TTL_S) -> str:
    return str(aws.client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": config.bucket(), "Key": key}, ExpiresIn=expires_s))
