"""``GET /api/jobs/{id}/download?token=…``: the email's link → a fresh presigned URL of the archive.

The link carries an HMAC token (job id + expiry) instead of a presigned S3 URL, because a URL
presigned by a Lambda role dies with the role's session; the redirect's URL is minted per
click and lives only minutes.
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from botocore.exceptions import ClientError

from posterflow import aws, config, jobs, tokens
from posterflow.api.errors import ApiError
from posterflow.api.links import presigned_get
from posterflow.errors import Reason

router = Router()

REDIRECT_TTL_S = 15 * 60


@router.get("/api/jobs/<job_id>/download")
def download(job_id: str, token: Annotated[str | None, Query()] = None) -> Response[str]:
    # The token is checked before the job is looked up, so a caller without a valid link
    # cannot tell existing job ids from made-up ones.
    if not token:
        raise ApiError(Reason.MISSING_TOKEN, "this download link has no token; use the link from the email")
    tokens.verify_download_token(job_id, token)  # TokenError: invalid_token or link_expired
    job = jobs.get_job(job_id)
    if not job.archive_key:
        if job.status == jobs.JobStatus.FAILED:
            raise ApiError(Reason.NO_ARCHIVE, f"job {job_id} failed and has no results archive")
        raise ApiError(Reason.ARCHIVE_NOT_READY, f"the results of job {job_id} are not ready yet (status {job.status})"
        )
    try:
        aws.client("s3").head_object(Bucket=config.bucket(), Key=job.archive_key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise ApiError(Reason.ARCHIVE_EXPIRED, f"the results archive of job {job_id} is no longer stored"
            ) from None
        raise
    return Response(
        status_code=302,
        body="",
        headers={"Location": presigned_get(job.archive_key, REDIRECT_TTL_S), "Cache-Control": "no-store"},
    )
