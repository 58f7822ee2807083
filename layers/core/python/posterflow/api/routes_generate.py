"""Generation routes (seeds 001/003): sync /api/generate, async single, batch."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from posterflow import config, jobs
from posterflow.api import idempotency
from posterflow.api.errors import ApiError
from posterflow.api.fields import JsonObject, JsonObjects
from posterflow.api.render_client import invoke_render, presigned_get
from posterflow.jobs import enqueue
from posterflow.posters import template_store

MAX_INLINE_ITEMS = 10_000
# Above this many items the API writes a manifest and the splitter queues the items.
DIRECT_SUBMIT_MAX = 500


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


class GenerateRequest(OutputOptions):
    template_id: str = Field(min_length=1)
    custom_data: JsonObject = Field(default_factory=dict)
    metadata: JsonObject = Field(default_factory=dict)
    entity_id: str | None = None
    notify_email: str | None = None
    webhook_url: str | None = None


class BatchRequest(OutputOptions):
    template_id: str = Field(min_length=1)
    items: JsonObjects = Field(min_length=1)
    metadata: JsonObject = Field(default_factory=dict)
    name: str | None = None
    notify_email: str | None = None
    webhook_url: str | None = None


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


def _spec(opts: OutputOptions, template_id: str, data: dict[str, Any], entity_id: str) -> dict[str, Any]:
    spec = opts.model_dump(exclude_none=True, exclude={"template_id", "custom_data", "items", "metadata", "name",
                                                       "notify_email", "webhook_url", "entity_id"})
    data = dict(data)
    for key in PER_ITEM_OVERLAYS:
        if isinstance(data.get(key), str) and data[key]:
            spec[key] = data.pop(key)
    spec.update(template_id=template_id, custom_data=data, entity_id=entity_id)
    return spec


def job_links(job: jobs.Job) -> dict[str, Any]:
    ws = config.websocket_url()
    return {
        "status_endpoint": f"/api/templates/job/{job.job_id}",
        "websocket_url": f"{ws}/?job_id={job.job_id}&token={job.token}" if ws else None,
        "token": job.token,
    }


def _submit(opts: OutputOptions, template_id: str, rows: list[dict[str, Any]], *, metadata: dict[str, Any],
            name: str | None, notify_email: str | None, webhook_url: str | None,
            entity_ids: list[str] | None = None) -> jobs.Job:
    tv = template_store.get(template_id)  # 404 before any job exists
    job = jobs.create_job("poster", total=len(rows), template_id=tv.id, template_section=tv.section,
                          template_version=tv.version, notify_email=notify_email, webhook_url=webhook_url,
                          metadata=metadata, name=name)
    ids = entity_ids or [entity_id_of(row, i) for i, row in enumerate(rows)]
    work = [(i, _spec(opts, tv.id, row, ids[i]), ids[i]) for i, row in enumerate(rows)]
    if len(work) <= DIRECT_SUBMIT_MAX:
        enqueue.submit_posters(job.job_id, work)
        jobs.add_log(job.job_id, "INFO", f"queued {len(rows)} poster(s) from template {tv.id}")
    else:
        # Writing thousands of items and messages would not fit API Gateway's 29 s: hand the
        # batch to the splitter as a manifest, which fans it out in checkpointed chunks.
        key = enqueue.submit_manifest(job.job_id, work)
        jobs.add_log(job.job_id, "INFO", f"{len(rows)} poster(s) from template {tv.id} handed to the splitter",
                     {"manifest": key})
    return job


def register(app: APIGatewayRestResolver) -> None:
    @app.post("/api/generate")
    def generate(body: Annotated[GenerateRequest, Body()]) -> dict[str, Any]:
        spec = _spec(body, body.template_id, body.custom_data, body.entity_id or entity_id_of(body.custom_data, 0))
        out = invoke_render(spec)
        return {
            "success": True,
            "url": presigned_get(out["key"]),
            "template_version_used": out["template_version_used"],
            "template_name": out["template_name"],
            "template_id": out["template_id"],
            "generation_time_ms": out["generation_time_ms"],
            "content_type": out["content_type"],
            "key": out["key"],
            # Requests the template made that the network policy refused (never fetched).
            "blocked_urls": out.get("blocked_urls", []),
        }

    def generate_async(body: GenerateRequest) -> tuple[dict[str, Any], int]:
        ids = [body.entity_id] if body.entity_id else None
        job = _submit(body, body.template_id, [body.custom_data], metadata=body.metadata, name=None,
                      notify_email=body.notify_email, webhook_url=body.webhook_url, entity_ids=ids)
        return {"success": True, "job_id": job.job_id, "total_items": 1,
                "message": "Template generation queued. Use the WebSocket or the status endpoint to track progress.",
                **job_links(job)}, 202

    @app.post("/api/generate-async")
    def generate_async_route(body: Annotated[GenerateRequest, Body()]) -> tuple[dict[str, Any], int]:
        return idempotency.once(app, "generate-async", body, lambda: generate_async(body))

    @app.post("/api/templates/generate")
    def templates_generate(body: Annotated[GenerateRequest, Body()]) -> tuple[dict[str, Any], int]:
        return idempotency.once(app, "templates/generate", body, lambda: generate_async(body))

    @app.post("/api/generate-batch")
    def generate_batch(body: Annotated[BatchRequest, Body()]) -> tuple[dict[str, Any], int]:
        return idempotency.once(app, "generate-batch", body, lambda: batch(body))

    def batch(body: BatchRequest) -> tuple[dict[str, Any], int]:
        if len(body.items) > MAX_INLINE_ITEMS:
            raise ApiError(413, "too_many_items",
                           f"{len(body.items)} items is over the inline limit of {MAX_INLINE_ITEMS}; "
                           "upload a CSV or JSON-lines manifest with POST /api/uploads instead")
        job = _submit(body, body.template_id, body.items, metadata=body.metadata, name=body.name,
                      notify_email=body.notify_email, webhook_url=body.webhook_url)
        n = len(body.items)
        return {"success": True, "job_id": job.job_id, "total_items": n,
                "message": f"Batch generation queued with {n} items. Use the WebSocket or the status endpoint "
                           "to track progress.", **job_links(job)}, 202
