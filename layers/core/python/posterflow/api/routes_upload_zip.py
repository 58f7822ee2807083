"""``POST /api/batch/upload-zip``: seed 004's multipart ZIP upload (``curl -F file=@photos.zip
-F projectId=proj-123 -F priority=5``) → one crop job, answered in the seed's shape
``{success, batchId, imageCount, queued}`` plus the job's links.

The ZIP takes the same path as a presigned upload (``POST /api/uploads``) or an S3 drop: the
job is created first, the ZIP is stored as ``uploads/<tenant>/<job_id>/<file>``, and the S3
event hands it to the splitter, which attaches it to this job (the key names it) and reads the
central directory with ranged GETs: one item per entry, photos queued for the crop worker,
other entries skipped or failed with their reasons. Before answering, the route reads the same
central directory from the body it holds (:mod:`posterflow.formats.zipindex`, the splitter's
reader and verdicts), so ``imageCount`` and ``queued`` are the numbers the split will produce,
and a body that is not a usable ZIP, or holds no photos, is refused before any job exists.

Budgets: the body (``POSTERFLOW_UPLOAD_ZIP_MAX_BYTES``, 4 MiB by default: what fits Lambda's
6 MB request payload once API Gateway has base64-encoded it), the form (parts, field sizes,
seconds) and the directory read (seconds); bigger ZIPs go through ``POST /api/uploads``.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from posterflow import aws, config, jobs, tenancy
from posterflow.api import idempotency, multipart, request
from posterflow.api.errors import ApiError
from posterflow.api.links import job_links
from posterflow.errors import Reason
from posterflow.formats import zipindex
from posterflow.jobs import lanes
from posterflow.resources import stack_spec

router = Router()

ROUTE = "/api/batch/upload-zip"
BIG_UPLOADS = "upload bigger ZIPs with POST /api/uploads (kind: crop), a presigned PUT of up to 5 GB"
PARSE_BUDGET_S = 5.0
SCAN_BUDGET_S = 10.0
MAX_NAME_CHARS = 200
_SOURCE = "upload-zip"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Form field names the seed and snake_case callers use, by the model's field.
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "project_id": ("projectId", "project_id"),
    "priority": ("priority",),
    "notify_email": ("notifyEmail", "notify_email"),
    "webhook_url": ("webhookUrl", "webhook_url"),
}


class UploadZipForm(BaseModel):
    """The form's fields besides ``file``, validated like a JSON body."""

    model_config = ConfigDict(extra="forbid")
    project_id: str | None = Field(None, min_length=1, max_length=200)
    priority: int | None = Field(None, ge=lanes.PRIORITY_MIN, le=lanes.PRIORITY_MAX)
    notify_email: str | None = Field(None, min_length=3, max_length=320)
    webhook_url: str | None = Field(None, min_length=1, max_length=2048)


def budget() -> multipart.Budget:
    return multipart.Budget(max_body_bytes=config.upload_zip_max_bytes(), max_seconds=PARSE_BUDGET_S,
                            big_upload_hint=BIG_UPLOADS)


def _invalid(field: str, message: str, kind: str) -> ApiError:
    return ApiError(Reason.VALIDATION_ERROR, message, [{"loc": ["form", field], "msg": message, "type": kind}])


def read_form(parts: list[multipart.Part]) -> tuple[multipart.Part, UploadZipForm]:
    """The ``file`` part and the other fields; 422 for a missing or empty file, a field given
    twice or a bad value. Fields the route does not know are ignored, as JSON routes do."""
    by_name: dict[str, list[multipart.Part]] = {}
    for part in parts:
        by_name.setdefault(part.name, []).append(part)
    for name, found in by_name.items():
        if len(found) > 1:
            raise _invalid(name, f"form field {name!r} is given {len(found)} times; give it once", "duplicate")
    files = by_name.get("file")
    if not files:
        raise ApiError(Reason.MISSING_FILE, "the form has no 'file' part: send the ZIP as -F file=@photos.zip",
                       {"field": "file", "fields": sorted(by_name)})
    file = files[0]
    if not file.data:
        raise ApiError(Reason.MISSING_FILE, "the 'file' part is empty: send a ZIP of photos", {"field": "file"})
    values: dict[str, Any] = {}
    for field, names in FIELD_NAMES.items():
        given = [n for n in names if n in by_name]
        if len(given) > 1:
            raise _invalid(field, f"give one of {' and '.join(given)}, not both", "duplicate")
        if given:
            text = by_name[given[0]][0].text()
            # priority: 1 (most urgent) to 10, the job's lane (posterflow.jobs.lanes); 422 otherwise.
            values[field] = lanes.priority_from_text(text) if field == "priority" else text.strip()
    try:
        return file, UploadZipForm.model_validate(values)
    except ValidationError as exc:
        details = [{"loc": ["form", *map(str, e.get("loc", ()))], "msg": e.get("msg"), "type": e.get("type")}
                   for e in exc.errors()]
        raise ApiError(Reason.VALIDATION_ERROR, "form failed validation: " + "; ".join(
            f"{d['loc'][-1]}: {d['msg']}" for d in details), details) from None


def safe_filename(filename: str | None) -> str:
    """A plain S3 name for the upload, ending ``.zip`` (the splitter's cue for a crop job)."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", base).strip("._-")[: MAX_NAME_CHARS - 4] or "upload"
    return name if name.lower().endswith(".zip") else name + ".zip"


def scan(data: bytes) -> zipindex.ZipSummary:
    """The ZIP's central directory, read from the body as the splitter reads it from S3 (the
    same verdicts), within :data:`SCAN_BUDGET_S`; 422 ``invalid_zip`` when it is no usable
    ZIP (the reason in ``details.reason``)."""
    reader = zipindex.BytesRangeReader(data)
    deadline = time.monotonic() + SCAN_BUDGET_S
    counts = {zipindex.Verdict.IMAGE: 0, zipindex.Verdict.SKIP: 0, zipindex.Verdict.FAIL: 0}
    reasons: dict[str, int] = {}
    total = 0
    try:
        directory = zipindex.open_zip(reader)
        for entry in zipindex.iter_entries(reader, directory):
            counts[entry.verdict] += 1
            if entry.reason:
                reasons[entry.reason] = reasons.get(entry.reason, 0) + 1
            total = entry.uncompressed_through
            if entry.index % 1000 == 999 and time.monotonic() > deadline:
                raise ApiError(Reason.PAYLOAD_TOO_LARGE, f"reading the ZIP's directory took over {SCAN_BUDGET_S:g} s; "
                               + BIG_UPLOADS, {"max_seconds": SCAN_BUDGET_S, "entries_read": entry.index + 1})
    except zipindex.BadZip as exc:
        raise ApiError(Reason.INVALID_ZIP, f"the file is not a usable ZIP: {exc.message}",
                       {"reason": exc.code}) from None
    verdict = zipindex.Verdict
    return zipindex.ZipSummary(directory=directory, entries=directory.entry_count, images=counts[verdict.IMAGE],
                               skipped=counts[verdict.SKIP], failed=counts[verdict.FAIL],
                               uncompressed_total=total, reasons=reasons)


def _counts(summary: zipindex.ZipSummary) -> dict[str, Any]:
    return {"entries": summary.entries, "photos": summary.images + summary.failed, "queued": summary.images,
            "skipped": summary.skipped, "refused": summary.failed, "reasons": summary.reasons}


def upload_zip(data: bytes, file: multipart.Part, form: UploadZipForm) -> tuple[dict[str, Any], int]:
    summary = scan(data)
    counts = _counts(summary)
    if counts["photos"] == 0:
        raise ApiError(Reason.NO_PHOTOS, f"the ZIP holds no photos ({', '.join(sorted(zipindex.IMAGE_EXTENSIONS))}): "
                       f"{summary.entries} entries, none a photo", counts)
    name = safe_filename(file.filename)
    metadata: dict[str, Any] = {"source": _SOURCE, "filename": (file.filename or name)[:MAX_NAME_CHARS],
                                "bytes": len(data), "image_count": counts["photos"]}
    if form.project_id is not None:
        metadata["projectId"] = form.project_id
    job = jobs.create_job("crop", None, name=name, project_id=form.project_id, priority=form.priority,
                          notify_email=form.notify_email, webhook_url=form.webhook_url, metadata=metadata)
    # uploads/<tenant>/<job_id>/<file>: the splitter attaches the upload to this job by both.
    key = tenancy.scoped_key(stack_spec().bucket.uploads_prefix, job.tenant, f"{job.job_id}/{name}")
    jobs.add_log(job.job_id, "INFO", f"received {name} ({len(data)} bytes) by POST {ROUTE}: {counts['queued']} "
                 f"photo(s) to crop of {summary.entries} entries", {"key": key, **counts})
    try:
        aws.client("s3").put_object(Bucket=config.bucket(), Key=key, Body=data, ContentType="application/zip",
                                    Metadata={"job-id": job.job_id})
    except Exception:
        jobs.fail_job(job.job_id, "storing the uploaded ZIP failed")
        raise
    links = job_links(job)
    return {
        "success": True,
        "batchId": job.job_id,
        "job_id": job.job_id,
        "imageCount": counts["photos"],
        "queued": counts["queued"],
        **counts,
        "project_id": form.project_id,
        "priority": job.priority,
        "lane": lanes.lane_of(job.priority),
        "key": key,
        **links,
        # Seed 004 polls the batch status; /api/jobs/{id} has the per-item results.
        "status_endpoint": f"/api/batch/status/{job.job_id}",
        "results_endpoint": f"/api/jobs/{job.job_id}",
    }, 202


@router.post(ROUTE, summary="Seed 004: a ZIP of photos as multipart/form-data → one crop job",
             description="Form fields: `file` (the ZIP, required), `projectId`, `priority` (1–10), `notifyEmail`, "
                         "`webhookUrl`. The body is read by the route itself (python-multipart, within "
                         "POSTERFLOW_UPLOAD_ZIP_MAX_BYTES); bigger ZIPs go through POST /api/uploads.")
def upload_zip_route() -> tuple[dict[str, Any], int]:
    event = request.event()
    limits = budget()
    content_type = event.headers.get("content-type")
    multipart.boundary_of(content_type)  # 415 before reading a body that is not a form
    data = multipart.body_bytes(event.raw_event, limits)
    file, form = read_form(multipart.parse(data, content_type, limits))
    zip_bytes = bytes(file.data)
    fingerprint = {"sha256": hashlib.sha256(zip_bytes).hexdigest(), "filename": file.filename,
                   **form.model_dump(mode="json")}
    return idempotency.once("batch/upload-zip", fingerprint, lambda: upload_zip(zip_bytes, file, form))
