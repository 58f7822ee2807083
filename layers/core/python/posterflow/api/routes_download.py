"""``GET /api/jobs/{id}/download?token=…``: the email's link → a fresh presigned URL of the archive
(``&part=N``: part N of a ``merge_pdf`` job's merged PDF, the e-mail's and webhook's merged links).

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
from posterflow.finalize import merge_pdf

router = Router()

REDIRECT_TTL_S = 15 * 60


@router.get("/api/jobs/<job_id>/download")
def download(job_id: str, token: Annotated[str | None, Query()] = None,
             part: Annotated[int | None, Query(ge=1)] = None) -> Response[str]:
    # The token is checked before the job is looked up, so a caller without a valid link
    # cannot tell existing job ids from made-up ones.
    if not token:
        raise ApiError(Reason.MISSING_TOKEN, "this download link has no token; use the link from the email")
    tokens.verify_download_token(job_id, token)  # TokenError: invalid_token or link_expired
    job = jobs.get_job(job_id)
    key = _merged_part_key(job, part) if part is not None else job.archive_key
    what = f"part {part} of the merged PDF" if part is not None else "the results archive"
    if not key:
        if job.status == jobs.JobStatus.FAILED:
            raise ApiError(Reason.NO_ARCHIVE, f"job {job_id} failed and has no results archive")
        raise ApiError(Reason.ARCHIVE_NOT_READY, f"the results of job {job_id} are not ready yet (status {job.status})"
        )
    try:
        aws.client("s3").head_object(Bucket=config.bucket(), Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise ApiError(Reason.ARCHIVE_EXPIRED, f"{what} of job {job_id} is no longer stored") from None
        raise
    return Response(
        status_code=302,
        body="",
        headers={"Location": presigned_get(key, REDIRECT_TTL_S), "Cache-Control": "no-store"},
    )


def _merged_part_key(job: jobs.Job, part: int) -> str | None:
    """The S3 key of part ``part`` of the job's merged PDF; None while finalize has not written
    it; 404 ``no_archive`` when the job has no such part."""
    record = merge_pdf.merged_record(job) if job.extra.get("merge_pdf") else {}
    if not record.get("done"):
        if job.extra.get("merge_pdf") and job.status != jobs.JobStatus.FAILED and not job.is_final:
            return None
        raise ApiError(Reason.NO_ARCHIVE, f"job {job.job_id} has no merged PDF")
    parts = {int(p["part"]): str(p["key"]) for p in record.get("parts", [])}
    if part not in parts:
        raise ApiError(Reason.NO_ARCHIVE, f"job {job.job_id}'s merged PDF has {len(parts)} part(s), not {part}")
    return parts[part]
