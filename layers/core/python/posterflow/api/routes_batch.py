"""Seed 004's face-crop batch routes: queue images by S3 key or URL, and the batch status shape.

``POST /api/batch/add-images`` makes one crop job (the batch) with one item and one crop
message per image; the crop worker reads S3 keys from the project bucket and fetches URLs
through the allow-list, so a missing key or a refused URL fails its item, not the request.
``GET /api/batch/status/{batch_id}`` answers in the seed's shape for any job, so a ZIP dropped
into S3 can be followed the same way; ``GET /api/jobs/{id}`` shows the same job with results.
``GET /api/batch/queue-stats`` lives with the job routes.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from posterflow import config, jobs, tenancy
from posterflow.api import idempotency
from posterflow.api.errors import ApiError
from posterflow.api.fields import JsonObject, Priority
from posterflow.api.links import job_links, presigned_get
from posterflow.crop import CropOptions
from posterflow.errors import Reason
from posterflow.jobs import enqueue, lanes
from posterflow.net import sources

router = Router()

MAX_IMAGES = 10_000
"""Like the poster batch's inline limit; more images go in a ZIP dropped into S3."""
MAX_KEY_CHARS = 1024  # S3's own limit
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_SOURCE = "add-images"


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class ImageRef(BaseModel):
    """One image: an S3 key of the project bucket (``s3://<our bucket>/key`` too) or a URL."""

    model_config = ConfigDict(extra="forbid")
    key: str | None = Field(None, validation_alias=_alias("key", "s3Key", "s3_key"), max_length=MAX_KEY_CHARS)
    url: str | None = Field(None, validation_alias=_alias("url", "imageUrl", "image_url"), max_length=4096)
    id: str | None = Field(None, validation_alias=_alias("id", "entityId", "entity_id", "recordId", "record_id"),
                           max_length=200, description="who the photo shows; defaults to the key or URL")

    @model_validator(mode="after")
    def _one_source(self) -> ImageRef:
        if (self.key is None) == (self.url is None):
            raise ValueError("give exactly one of key and url")
        return self


class BatchCropOptions(BaseModel):
    """The crop options a caller may set. Decode limits (pixels, bytes) stay the worker's:
    raising them from the API would let one request bring a pixel bomb back in."""

    model_config = ConfigDict(extra="forbid")
    size: int = Field(300, ge=16, le=4096, validation_alias=_alias("size", "outputSize", "output_size"))
    format: str = Field("jpeg", pattern="^(jpeg|webp)$")
    quality: int = Field(90, ge=1, le=100)
    all_faces: bool = Field(False, validation_alias=_alias("all_faces", "allFaces"))
    max_faces: int = Field(20, ge=1, le=100, validation_alias=_alias("max_faces", "maxFaces"))
    padding: float = Field(0.20, ge=0, le=3)
    hair: float = Field(0.12, ge=0, le=3)
    min_score: float = Field(0.8, gt=0, le=1, validation_alias=_alias("min_score", "minScore"))

    def crop_options(self) -> CropOptions:
        return CropOptions.model_validate(self.model_dump())


class AddImagesRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    images: list[str | ImageRef] = Field(min_length=1)
    batch_id: str | None = Field(None, validation_alias=_alias("batchId", "batch_id"),
                                 pattern=r"^[A-Za-z0-9_-]{1,64}$",
                                 description="optional, chosen by the caller: repeating a request is then safe")
    project_id: str | None = Field(None, validation_alias=_alias("projectId", "project_id"), max_length=200)
    priority: Priority = None
    name: str | None = Field(None, max_length=200)
    options: BatchCropOptions = BatchCropOptions()
    notify_email: str | None = Field(None, validation_alias=_alias("notifyEmail", "notify_email"), max_length=320)
    webhook_url: str | None = Field(None, validation_alias=_alias("webhookUrl", "webhook_url"), max_length=2048)
    metadata: JsonObject = Field(default_factory=dict)


def _source(image: str | ImageRef, index: int) -> dict[str, str]:
    """``{"key": ...}`` or ``{"url": ...}`` (plus ``id``). A key must be one of the caller's
    objects (:mod:`posterflow.net.sources`); whether it exists or a URL is allowed is the
    worker's to find out, per item."""
    ref = image if isinstance(image, ImageRef) else (
        ImageRef(url=image.strip()) if _URL.match(image.strip()) and not image.strip().lower().startswith("s3://")
        else ImageRef(key=image.strip()))
    try:
        found = sources.parse(ref.key if ref.key is not None else (ref.url or ""), tenant=tenancy.current(),
                              what=f"images[{index}]")
    except sources.SourceRefused as exc:
        raise ApiError(Reason.INVALID_IMAGE, exc.message, {"index": index}) from None
    if found.kind == "data":
        raise ApiError(Reason.INVALID_IMAGE, f"images[{index}]: give an S3 key or a URL, not a data: URI",
                       {"index": index})
    out = {"key": found.key} if found.key is not None else {"url": found.url or ""}
    if ref.id:
        out["id"] = ref.id
    return out


def _fingerprint(sources: list[dict[str, str]], options: CropOptions) -> str:
    text = json.dumps([sources, options.model_dump(mode="json")], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _photo(source: dict[str, str], bucket: str) -> dict[str, str]:
    return {"bucket": bucket, "key": source["key"]} if "key" in source else {"url": source["url"]}


def _new_item(item_id: int, source: dict[str, str], bucket: str) -> jobs.NewItem:
    # The item keeps where its photo is, so a retry can send it again (posterflow.jobs.retry).
    return jobs.NewItem(item_id=item_id, entity_id=_entity(source), input={**source, "photo": _photo(source, bucket)})


def _message(job_id: str, item_id: int, source: dict[str, str], bucket: str, options: CropOptions) -> dict[str, Any]:
    return {"job_id": job_id, "item_id": item_id, **_photo(source, bucket), "options": options.model_dump(mode="json")}


def _entity(source: dict[str, str]) -> str:
    return source.get("id") or (source.get("key") or source.get("url") or "")[-200:]


def _replay(job: jobs.Job, fingerprint: str, sources: list[dict[str, str]], bucket: str,
            options: CropOptions) -> int:
    """The same request again (a client retry): write whatever items a failed first attempt
    left out and queue the items still pending. Workers count each item once and write
    deterministic keys, so a message sent twice costs time, never a wrong count."""
    if job.kind != "crop" or job.metadata.get("fingerprint") != fingerprint:
        raise ApiError(Reason.BATCH_CONFLICT, f"batch {job.job_id} exists with other images or options")
    if jobs.count_items(job.job_id) < len(sources):
        jobs.put_items(job.job_id, (_new_item(i, s, bucket) for i, s in enumerate(sources)), if_absent=True)
    pending = [i.item_id for i in jobs.iter_items(job.job_id, status="pending", consistent=True)]
    return enqueue.send_messages(lanes.queue_key("crop", job.priority),
                                 (_message(job.job_id, i, sources[i], bucket, options) for i in pending))


def _create(body: AddImagesRequest, sources: list[dict[str, str]], fingerprint: str, bucket: str,
            options: CropOptions) -> jobs.Job:
    metadata = {**body.metadata, "source": _SOURCE, "fingerprint": fingerprint,
                "crop_options": options.model_dump(mode="json")}
    if body.project_id is not None:
        metadata["projectId"] = body.project_id
    try:
        job = jobs.create_job("crop", total=len(sources), job_id=body.batch_id, name=body.name,
                              notify_email=body.notify_email, webhook_url=body.webhook_url, metadata=metadata,
                              priority=body.priority, project_id=body.project_id)
    except jobs.ItemTooLarge as exc:
        raise ApiError(Reason.METADATA_TOO_LARGE, str(exc)) from None
    # Items first, so a fast worker always finds its item.
    jobs.put_items(job.job_id, (_new_item(i, s, bucket) for i, s in enumerate(sources)))
    enqueue.send_messages(lanes.queue_key("crop", job.priority),
                          (_message(job.job_id, i, s, bucket, options) for i, s in enumerate(sources)))
    jobs.add_log(job.job_id, "INFO", f"queued {len(sources)} image(s) for face crops")
    return job


def batch_json(job: jobs.Job) -> dict[str, Any]:
    """Seed 004's ``batch`` object, plus the counts and links the seed's callers can use."""
    total = job.total or 0
    return {
        "batchId": job.job_id,
        "jobId": job.job_id,
        "kind": str(job.kind),
        "status": str(job.status),
        "priority": job.priority,
        # An upload-zip job counts its photos (its items also hold the ZIP's other entries).
        "imageCount": job.metadata.get("image_count", total),
        "progress": {"processed": job.processed, "total": total, "failed": job.failed,
                     "succeeded": job.succeeded, "skipped": job.skipped, "cancelled": job.cancelled},
        "progressPercent": job.percent,
        "createdAt": job.created_at,
        "completedAt": job.completed_at,
        "error": job.error,
        "archiveUrl": presigned_get(job.archive_key) if job.archive_key else None,
        "resultsEndpoint": f"/api/jobs/{job.job_id}",
    }


def add_images(body: AddImagesRequest) -> tuple[dict[str, Any], int]:
    if len(body.images) > MAX_IMAGES:
        raise ApiError(Reason.TOO_MANY_IMAGES, f"{len(body.images)} images is over the limit of {MAX_IMAGES}; "
                       "drop a ZIP of the photos under uploads/ instead")
    bucket = config.bucket()
    images = [_source(image, i) for i, image in enumerate(body.images)]
    options = body.options.crop_options()
    fingerprint = _fingerprint(images, options)
    existing = jobs.find_job(body.batch_id) if body.batch_id else None
    if existing is None:
        try:
            job = _create(body, images, fingerprint, bucket, options)
            queued, status = len(images), 202
        except jobs.JobStateConflict:  # the same batch id, created by a concurrent request
            existing = jobs.get_job(body.batch_id or "")
    if existing is not None:
        if existing.tenant != tenancy.current():
            # Batch ids are the callers' own words, so two tenants can pick the same one;
            # say it is taken without saying anything about the other batch.
            raise ApiError(Reason.BATCH_CONFLICT, f"batch id {existing.job_id} is taken; choose another")
        job, queued, status = existing, _replay(existing, fingerprint, images, bucket, options), 200
    return {"success": True, "batchId": job.job_id, "job_id": job.job_id, "imageCount": len(images),
            "queued": queued, **job_links(job)}, status


@router.post("/api/batch/add-images")
def add_images_route(body: Annotated[AddImagesRequest, Body()]) -> tuple[dict[str, Any], int]:
    # Idempotency-Key as on every job-creating route; batchId is the seed-style alternative.
    return idempotency.once("batch/add-images", body, lambda: add_images(body))


@router.get("/api/batch/status/<batch_id>")
def batch_status(batch_id: str) -> dict[str, Any]:
    job = jobs.find_job(batch_id)
    if job is None or job.tenant != tenancy.current():
        raise ApiError(Reason.BATCH_NOT_FOUND, f"batch {batch_id} not found")
    return {"success": True, "batch": batch_json(job)}
