"""What a poster request carries, shared by the routes that make poster jobs (generate,
batch, bulk, uploads): the output options and request bodies, how a row becomes a poster spec,
and how a job's rows are handed to the workers (directly, or through the splitter)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from posterflow import jobs
from posterflow.api.fields import JsonObject, JsonObjects, Priority
from posterflow.jobs import enqueue
from posterflow.posters import template_store

MAX_INLINE_ITEMS = 10_000
# Above this many items the API writes a manifest and the splitter queues the items.
DIRECT_SUBMIT_MAX = 500

# One item of a poster job: (item id, poster spec, entity id).
Work = tuple[int, dict[str, Any], str]
# A caller's hook on a new job before its items are queued (posterflow.api.batch_modes: the
# merge_pdf mark, an inline batch); True: it took the work and nothing is queued here.
Dispatch = Callable[[jobs.Job, Sequence[Work]], bool]


class OutputOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    format: str | None = None
    size: str | None = None
    width: int | None = Field(None, ge=1, le=8000)
    height: int | None = Field(None, ge=1, le=8000)
    scale: float | None = Field(None, gt=0, le=4)
    quality: int = Field(85, ge=1, le=100)
    logo: str | None = None
    profile_image: str | None = None
    bleed_mm: float | None = Field(None, ge=0, le=20, description="print PDF bleed on every side (canvas "
                                   "templates; default: the template's)")


class GenerateRequest(OutputOptions):
    template_id: str = Field(min_length=1)
    custom_data: JsonObject = Field(default_factory=dict)
    metadata: JsonObject = Field(default_factory=dict)
    entity_id: str | None = None
    notify_email: str | None = None
    webhook_url: str | None = None
    priority: Priority = None


class BatchRequest(OutputOptions):
    template_id: str = Field(min_length=1)
    items: JsonObjects = Field(min_length=1)
    metadata: JsonObject = Field(default_factory=dict)
    merge_pdf: bool = Field(False, description="one merged PDF of the succeeded items (pdf output only)")
    mode: Literal["async", "sync", "auto"] = Field(
        "async", description="sync/auto: up to POSTERFLOW_SYNC_BATCH_MAX items answered inline (200 with results)")
    name: str | None = None
    notify_email: str | None = None
    webhook_url: str | None = None
    priority: Priority = None


def entity_id_of(data: dict[str, Any], index: int) -> str:
    """The seeds name entities by an ``*_id`` field (``testimonial_id``); else the row number."""
    if data.get("entity_id") not in (None, ""):
        return str(data["entity_id"])
    for key, value in data.items():
        if key.endswith("_id") and value not in (None, ""):
            return str(value)
    return str(index)


# Per-item overlay sources in a batch row override the batch's own (seed 000: a profile photo
# per user); they are not template data.
PER_ITEM_OVERLAYS = ("profile_image", "logo")


def poster_spec(opts: OutputOptions, template_id: str, data: dict[str, Any], entity_id: str) -> dict[str, Any]:
    spec = opts.model_dump(exclude_none=True, exclude={"template_id", "custom_data", "items", "metadata", "name",
                                                       "merge_pdf", "mode",
                                                       "notify_email", "webhook_url", "entity_id", "priority"})
    data = dict(data)
    for key in PER_ITEM_OVERLAYS:
        if isinstance(data.get(key), str) and data[key]:
            spec[key] = data.pop(key)
    spec.update(template_id=template_id, custom_data=data, entity_id=entity_id)
    return spec


def submit_posters(opts: OutputOptions, template_id: str, rows: list[dict[str, Any]], *, metadata: dict[str, Any],
            name: str | None, notify_email: str | None, webhook_url: str | None,
            entity_ids: list[str] | None = None, template: template_store.TemplateVersion | None = None,
            dispatch: Dispatch | None = None, priority: int | None = None) -> jobs.Job:
    tv = template or template_store.get(template_id)  # 404 before any job exists
    job = jobs.create_job("poster", total=len(rows), template_id=tv.id, template_section=tv.section,
                          template_version=tv.version, notify_email=notify_email, webhook_url=webhook_url,
                          metadata=metadata, name=name, priority=priority)
    ids = entity_ids or [entity_id_of(row, i) for i, row in enumerate(rows)]
    work = [(i, poster_spec(opts, tv.id, row, ids[i]), ids[i]) for i, row in enumerate(rows)]
    if dispatch is not None and dispatch(job, work):
        return job
    if len(work) <= DIRECT_SUBMIT_MAX:
        enqueue.submit_posters(job.job_id, work, priority=job.priority)
        jobs.add_log(job.job_id, "INFO", f"queued {len(rows)} poster(s) from template {tv.id}")
    else:
        # Writing thousands of items and messages would not fit API Gateway's 29 s: hand the
        # batch to the splitter as a manifest, which fans it out in checkpointed chunks.
        key = enqueue.submit_manifest(job.job_id, work)
        jobs.add_log(job.job_id, "INFO", f"{len(rows)} poster(s) from template {tv.id} handed to the splitter",
                     {"manifest": key})
    return job
