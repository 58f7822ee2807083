"""One poster from a template and data: resolve the template version, fill it, render it,
overlay logo and profile photo, store it in S3 under a deterministic key.

Both modes of ``fn render`` (SQS batches and the synchronous direct invoke behind
``POST /api/generate``) go through :func:`render_posters`. A canvas template (seed 002) is
filled in Python (:mod:`posterflow.posters.canvas.fill`) and drawn by the canvas renderer
(``posterflow.render.canvas``) on the same warm engine; overlays and the output key are shared.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from posterflow import aws, config, observability, tenancy
from posterflow.errors import PosterflowError, Reason
from posterflow.net import sources
from posterflow.posters import overlay, template_store, templating
from posterflow.posters.canvas import fill as canvas_fill
from posterflow.posters.canvas import spec as canvas_spec
from posterflow.posters.errors import PosterError as PosterError
from posterflow.render import engine as render_engine
from posterflow.render import sizes
from posterflow.resources import stack_spec

EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp", "pdf": "pdf"}


class PosterSpec(BaseModel):
    """What to render. ``template_id`` may be pinned (``<section>_v<N>``) by the caller."""

    model_config = ConfigDict(extra="ignore")

    template_id: str
    custom_data: dict[str, Any] = Field(default_factory=dict)
    columns: list[str] | None = None
    format: str | None = None
    size: str | None = None
    width: int | None = None
    height: int | None = None
    scale: float | None = None
    quality: int = Field(85, ge=1, le=100)
    bleed_mm: float | None = Field(None, ge=0, le=20, description="print PDF bleed (canvas templates)")
    logo: str | None = Field(None, description="S3 key you own (plain or s3://), allow-listed URL or data: URI")
    profile_image: str | None = None
    entity_id: str | None = None

    @field_validator("custom_data")
    @classmethod
    def _keys_are_strings(cls, value: dict[str, Any]) -> dict[str, Any]:
        return {str(k): v for k, v in value.items()}


class PosterOutput(BaseModel):
    key: str
    content_type: str
    bytes: int
    generation_time_ms: int
    template_id: str
    template_version_used: int
    template_name: str
    width: int
    height: int
    blocked_urls: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class PosterWork:
    """One poster to make: what, for which job item, on behalf of which tenant (templates,
    overlay sources, assets and the output key are all the tenant's)."""

    spec: PosterSpec
    job_id: str
    item_id: int
    tenant: str


def output_key(tenant: str, job_id: str, item_id: int, fmt: str) -> str:
    return tenancy.scoped_key(stack_spec().bucket.outputs_prefix, tenant, f"{job_id}/{item_id:06d}.{EXTENSIONS[fmt]}")


# Source failures keep the item codes callers already match on.
_SOURCE_REASONS = {Reason.SOURCE_NOT_FOUND: Reason.OVERLAY_NOT_FOUND, Reason.SOURCE_REFUSED: Reason.OVERLAY_REFUSED}


def fetch_source(ref: str, what: str, tenant: str) -> bytes:
    """Bytes of an overlay source the tenant may read (:mod:`posterflow.net.sources`)."""
    try:
        return sources.fetch(ref, tenant=tenant, what=what)
    except sources.SourceError as exc:
        raise PosterError(_SOURCE_REASONS.get(exc.reason, Reason.OVERLAY_FAILED), exc.message) from None


class _Prepared(BaseModel):
    """A filled poster ready to draw: an HTML ``request`` for the engine, or a ``canvas``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    template: template_store.TemplateVersion
    request: render_engine.RenderRequest | None = None
    canvas: canvas_spec.FilledCanvas | None = None


def _prepare_canvas(spec: PosterSpec, tv: template_store.TemplateVersion, tenant: str) -> _Prepared:
    """Fill a canvas version with the item's data (see :mod:`posterflow.posters.canvas.fill`)."""
    try:
        fmt = sizes.parse_format(spec.format or tv.format)
        # The canvas's pixel size times scale must be a bitmap the engine can make.
        sizes.resolve_size(width=tv.width, height=tv.height, scale=spec.scale)
        paper = spec.size or tv.size
        if paper:
            sizes.resolve_size(paper)
    except (sizes.UnsupportedFormat, sizes.UnsupportedSize) as exc:
        raise PosterError(exc.reason, exc.message) from None
    output = canvas_spec.CanvasOutput(format=fmt, scale=spec.scale or 1.0, quality=spec.quality, size=paper,
                                      bleed_mm=spec.bleed_mm if spec.bleed_mm is not None else (tv.bleed_mm or 0.0))
    try:
        filled = canvas_fill.fill(template_store.canvas_of(tv), spec.custom_data, output=output,
                                  columns=spec.columns, fetch=lambda ref, what: fetch_source(ref, what, tenant))
    except PosterflowError as exc:
        raise PosterError(exc.reason, exc.message, exc.details) from None
    return _Prepared(template=tv, canvas=filled)


def _resolve(spec: PosterSpec, tenant: str,
             templates: dict[tuple[str, str], template_store.TemplateVersion] | None) -> template_store.TemplateVersion:
    try:
        cache = templates if templates is not None else {}
        tv = cache.get((tenant, spec.template_id)) or template_store.get(spec.template_id, tenant=tenant)
        cache[(tenant, spec.template_id)] = tv
    except (template_store.InvalidTemplateId, template_store.TemplateNotFound) as exc:
        raise PosterError(exc.reason, exc.message) from None
    return tv


def prepare(spec: PosterSpec, tenant: str,
            templates: dict[tuple[str, str], template_store.TemplateVersion] | None = None) -> _Prepared:
    """Resolve and fill the tenant's template; raises PosterError for anything wrong with the
    input. ``templates`` caches resolutions across the items of one batch (they share one)."""
    tv = _resolve(spec, tenant, templates)
    if tv.kind == "canvas":
        return _prepare_canvas(spec, tv, tenant)
    try:
        fmt = sizes.parse_format(spec.format or tv.format)
        size = sizes.resolve_size(spec.size or (tv.size if not (tv.width and tv.height) else None),
                                  width=spec.width or (tv.width if not spec.size else None),
                                  height=spec.height or (tv.height if not spec.size else None), scale=spec.scale)
    except (sizes.UnsupportedFormat, sizes.UnsupportedSize) as exc:
        raise PosterError(exc.reason, exc.message) from None
    try:
        html = templating.render_html(template_store.html_of(tv), spec.custom_data, spec.columns)
    except templating.TemplateError as exc:
        raise PosterError(exc.reason, exc.message, exc.details) from None
    # The page's asset URLs read the tenant's own assets/<tenant>/ (served by the engine).
    assets = tenancy.scoped_key(stack_spec().bucket.assets_prefix, tenant, "")
    request = render_engine.RenderRequest(html=html, format=fmt, size=size, quality=spec.quality,
                                          javascript=tv.javascript, asset_prefix=assets)
    return _Prepared(template=tv, request=request)


def finish(prepared: _Prepared, result: render_engine.RenderResult | canvas_spec.CanvasResult, work: PosterWork,
           started: float) -> PosterOutput:
    spec, data = work.spec, result.data
    if spec.logo or spec.profile_image:
        logo = fetch_source(spec.logo, "logo", work.tenant) if spec.logo else None
        profile = fetch_source(spec.profile_image, "profile photo", work.tenant) if spec.profile_image else None
        try:
            data = overlay.apply_overlays(data, logo=logo, profile=profile, quality=spec.quality)
        except overlay.OverlayError as exc:
            raise PosterError(exc.reason, exc.message) from None
    key = output_key(work.tenant, work.job_id, work.item_id, result.format)
    aws.client("s3").put_object(Bucket=config.bucket(), Key=key, Body=data, ContentType=result.content_type)
    tv = prepared.template
    return PosterOutput(
        key=key, content_type=result.content_type, bytes=len(data),
        generation_time_ms=int((time.perf_counter() - started) * 1000),
        template_id=tv.id, template_version_used=tv.version, template_name=tv.name,
        width=result.width, height=result.height, blocked_urls=list(getattr(result, "blocked_urls", ())),
    )


def _render_canvases(canvases: list[canvas_spec.FilledCanvas]) -> list[canvas_spec.CanvasResult | Exception]:
    from posterflow.render import canvas as canvas_render  # the Chromium canvas renderer

    return canvas_render.get_renderer().render_canvases(canvases)


def _as_item_error(outcome: Exception) -> PosterError:
    """A render slot's exception as the item's error; infrastructure failures raise."""
    if isinstance(outcome, render_engine.ChromiumNotFound):
        raise outcome
    if isinstance(outcome, render_engine.RenderError):
        # A crashed browser is relaunched by the engine; the item deserves another try.
        crashed = isinstance(outcome, render_engine.BrowserCrashed)
        return PosterError(outcome.reason, outcome.message, outcome.details, retryable=crashed)
    if isinstance(outcome, PosterflowError):  # text_overflow and the renderer's other input errors
        return PosterError(outcome.reason, outcome.message, outcome.details)
    raise outcome


@observability.tracer.capture_method(capture_response=False)
def render_posters(work: list[PosterWork]) -> list[PosterOutput | PosterError]:
    """Render many posters on the warm engine, in parallel pages; one bad item fails alone.

    Infrastructure failures (S3 unavailable, no browser) raise, so the caller can retry the
    message; input problems come back as PosterError in that item's slot."""
    started = time.perf_counter()
    results: list[PosterOutput | PosterError | None] = [None] * len(work)
    prepared: dict[int, _Prepared] = {}
    templates: dict[tuple[str, str], template_store.TemplateVersion] = {}
    to_fill: list[tuple[int, template_store.TemplateVersion]] = []
    for i, one in enumerate(work):
        try:
            tv = _resolve(one.spec, one.tenant, templates)
            if tv.kind == "canvas":
                to_fill.append((i, tv))
            else:
                prepared[i] = prepare(one.spec, one.tenant, templates)
        except PosterError as exc:
            results[i] = exc
    if to_fill:
        # A canvas item reads its image sources while it is filled: the batch's reads overlap.
        def fill_one(i: int, tv: template_store.TemplateVersion) -> _Prepared | PosterError:
            try:
                return _prepare_canvas(work[i].spec, tv, work[i].tenant)
            except PosterError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=min(8, len(to_fill))) as pool:
            for (i, _), made in zip(to_fill, pool.map(lambda args: fill_one(*args), to_fill), strict=True):
                if isinstance(made, PosterError):
                    results[i] = made
                else:
                    prepared[i] = made
    html = [i for i, p in prepared.items() if p.request is not None]
    canvases = [i for i, p in prepared.items() if p.canvas is not None]
    rendered: list[tuple[int, render_engine.RenderResult | canvas_spec.CanvasResult | Exception]] = []
    if html:
        requests = [r for i in html if (r := prepared[i].request) is not None]
        rendered.extend(zip(html, render_engine.get_engine().render_many(requests), strict=True))
    if canvases:
        filled = [c for i in canvases if (c := prepared[i].canvas) is not None]
        rendered.extend(zip(canvases, _render_canvases(filled), strict=True))
    to_finish: list[tuple[int, render_engine.RenderResult | canvas_spec.CanvasResult]] = []
    for i, outcome in sorted(rendered, key=lambda pair: pair[0]):
        if isinstance(outcome, Exception):
            results[i] = _as_item_error(outcome)
        else:
            to_finish.append((i, outcome))

    def finish_one(i: int, outcome: render_engine.RenderResult | canvas_spec.CanvasResult,
                   ) -> PosterOutput | PosterError:
        try:
            return finish(prepared[i], outcome, work[i], started)
        except PosterError as exc:
            return exc

    # Overlays and S3 puts of a batch overlap (boto3 clients are thread-safe); other errors
    # propagate so the batch is retried.
    with ThreadPoolExecutor(max_workers=8) as pool:
        for (i, _), result in zip(to_finish, pool.map(lambda args: finish_one(*args), to_finish), strict=True):
            results[i] = result
    return [r for r in results if r is not None]
