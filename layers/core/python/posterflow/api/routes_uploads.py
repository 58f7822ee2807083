"""``POST /api/uploads``: a presigned PUT for a CSV of poster rows or a ZIP of photos.

The job is created first (so the caller has its id, token and status link before uploading);
the upload key is ``uploads/<job_id>/<filename>``, which the splitter recognises and attaches
to this job when the S3 event arrives. Nothing else is needed to start the work: the PUT is
the trigger. The output options of a poster job travel in the job's ``metadata.spec``, which
the splitter merges into every row's spec.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import ConfigDict, Field, field_validator, model_validator

from posterflow import aws, config, jobs, tenancy
from posterflow.api import idempotency
from posterflow.api.fields import JsonObject, Priority
from posterflow.api.links import job_links
from posterflow.api.poster_requests import OutputOptions
from posterflow.posters import template_store
from posterflow.resources import stack_spec

router = Router()

UPLOAD_TTL_S = 3600
CONTENT_TYPES = {"poster": "text/csv", "crop": "application/zip"}
EXTENSIONS = {"poster": ".csv", "crop": ".zip"}
# Plain names only: no folders, no spaces (S3 events encode them), nothing hidden.
_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_SPEC_FIELDS = ("format", "size", "width", "height", "scale", "quality", "logo", "profile_image")


class UploadRequest(OutputOptions):
    model_config = ConfigDict(extra="ignore")
    kind: Literal["poster", "crop"] = "poster"
    filename: str = Field(min_length=1, max_length=200)
    template_id: str | None = Field(None, min_length=1)
    metadata: JsonObject = Field(default_factory=dict)
    name: str | None = None
    notify_email: str | None = None
    webhook_url: str | None = None
    priority: Priority = None

    @field_validator("filename")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not _FILENAME.match(value) or ".." in value:
            raise ValueError("filename must be a plain name: letters, digits, '.', '_' or '-', no folders")
        return value

    @model_validator(mode="after")
    def _fits_kind(self) -> UploadRequest:
        if not self.filename.lower().endswith(EXTENSIONS[self.kind]):
            raise ValueError(f"a {self.kind} upload must be a {EXTENSIONS[self.kind]} file")
        if self.kind == "poster" and not self.template_id:
            raise ValueError("a poster upload needs template_id")
        return self


def _presigned_put(key: str, content_type: str) -> str:
    # Content-Type is signed: the PUT must send exactly this header.
    return str(aws.client("s3").generate_presigned_url(
        "put_object", Params={"Bucket": config.bucket(), "Key": key, "ContentType": content_type},
        ExpiresIn=UPLOAD_TTL_S, HttpMethod="PUT"))


def create_upload(body: UploadRequest) -> tuple[dict[str, Any], int]:
    template: dict[str, Any] = {}
    if body.kind == "poster":
        assert body.template_id is not None  # checked by the model
        tv = template_store.get(body.template_id)  # 404 before any job exists
        # Pinned now, as for an inline batch: a template activated meanwhile does not change it.
        template = {"template_id": tv.id, "template_section": tv.section, "template_version": tv.version}
    spec = body.model_dump(include=set(_SPEC_FIELDS), exclude_none=True) if body.kind == "poster" else {}
    job = jobs.create_job(body.kind, None, name=body.name or body.filename, notify_email=body.notify_email,
                          webhook_url=body.webhook_url, metadata={**body.metadata, "spec": spec},
                          priority=body.priority, **template)
    # uploads/<tenant>/<job_id>/<file>: the splitter finds the job by both, so a key cannot
    # name another tenant's job.
    key = tenancy.scoped_key(stack_spec().bucket.uploads_prefix, job.tenant, f"{job.job_id}/{body.filename}")
    jobs.add_log(job.job_id, "INFO", f"waiting for the upload of {body.filename}", {"key": key})
    content_type = CONTENT_TYPES[body.kind]
    links = job_links(job)
    if body.kind == "crop":
        links["status_endpoint"] = f"/api/jobs/{job.job_id}"
    return {
        "success": True,
        "job_id": job.job_id,
        "kind": body.kind,
        "upload_url": _presigned_put(key, content_type),
        "method": "PUT",
        "headers": {"Content-Type": content_type},
        "key": key,
        "expires_in": UPLOAD_TTL_S,
        "message": f"PUT the {EXTENSIONS[body.kind]} file to upload_url with the given headers; "
                   "the job starts when the upload lands.",
        **links,
    }, 201


@router.post("/api/uploads")
def uploads(body: Annotated[UploadRequest, Body()]) -> tuple[dict[str, Any], int]:
    return idempotency.once("uploads", body, lambda: create_upload(body))
