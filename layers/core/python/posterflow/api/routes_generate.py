"""Generation routes (seeds 001/003): sync /api/generate, async single, batch."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from posterflow.api import batch_modes, idempotency
from posterflow.api.errors import ApiError
from posterflow.api.links import job_links, presigned_get
from posterflow.api.poster_requests import (
    MAX_INLINE_ITEMS,
    BatchRequest,
    Dispatch,
    GenerateRequest,
    entity_id_of,
    poster_spec,
    submit_posters,
)
from posterflow.api.render_client import invoke_render
from posterflow.errors import Reason
from posterflow.posters.template_store import TemplateVersion

router = Router()

@router.post("/api/generate")
def generate(body: Annotated[GenerateRequest, Body()]) -> dict[str, Any]:
    spec = poster_spec(body, body.template_id, body.custom_data, body.entity_id or entity_id_of(body.custom_data, 0))
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
    job = submit_posters(body, body.template_id, [body.custom_data], metadata=body.metadata, name=None,
                  notify_email=body.notify_email, webhook_url=body.webhook_url, entity_ids=ids,
                  priority=body.priority)
    return {"success": True, "job_id": job.job_id, "total_items": 1,
            "message": "Template generation queued. Use the WebSocket or the status endpoint to track progress.",
            **job_links(job)}, 202


@router.post("/api/generate-async")
def generate_async_route(body: Annotated[GenerateRequest, Body()]) -> tuple[dict[str, Any], int]:
    return idempotency.once("generate-async", body, lambda: generate_async(body))


@router.post("/api/templates/generate")
def templates_generate(body: Annotated[GenerateRequest, Body()]) -> tuple[dict[str, Any], int]:
    return idempotency.once("templates/generate", body, lambda: generate_async(body))


@router.post("/api/generate-batch")
def generate_batch(body: Annotated[BatchRequest, Body()]) -> tuple[dict[str, Any], int]:
    return idempotency.once("generate-batch", body, lambda: batch_modes.generate_batch(body, batch))


def batch(body: BatchRequest, *, template: TemplateVersion | None = None,
          dispatch: Dispatch | None = None) -> tuple[dict[str, Any], int]:
    if len(body.items) > MAX_INLINE_ITEMS:
        raise ApiError(Reason.TOO_MANY_ITEMS,
                       f"{len(body.items)} items is over the inline limit of {MAX_INLINE_ITEMS}; "
                       "upload a CSV or JSON-lines manifest with POST /api/uploads instead")
    job = submit_posters(body, body.template_id, body.items, metadata=body.metadata, name=body.name,
                  template=template, dispatch=dispatch,
                  notify_email=body.notify_email, webhook_url=body.webhook_url, priority=body.priority)
    n = len(body.items)
    return {"success": True, "job_id": job.job_id, "total_items": n,
            "message": f"Batch generation queued with {n} items. Use the WebSocket or the status endpoint "
                       "to track progress.", **job_links(job)}, 202
