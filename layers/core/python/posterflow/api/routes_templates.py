"""Template routes (seed 003): upload, list, get, update (new version), activate, preview.

A template is ``kind: html`` (the default: ``html_content``) or ``kind: canvas`` (seed 002: a
Fabric.js ``canvas_json`` with ``width``/``height`` and ``variable_mappings``, validated by
:mod:`posterflow.posters.canvas.model`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, Field

from posterflow import config
from posterflow.api import request
from posterflow.api.errors import ApiError
from posterflow.api.render_client import invoke_render, read_output
from posterflow.errors import Reason
from posterflow.posters import template_store, templating
from posterflow.posters.canvas import model as canvas_model

router = Router()


class _TemplateBody(BaseModel):
    """What an upload and an update (a new version) both carry."""

    html_content: str | None = Field(None, min_length=1)
    set_as_active: bool = True
    placeholders: list[templating.Placeholder] | None = None
    width: int | None = Field(None, ge=1, le=8000)
    height: int | None = Field(None, ge=1, le=8000)
    size: str | None = None
    # Canvas templates (kind: canvas).
    canvas_json: dict[str, Any] | str | None = Field(
        None, description="Fabric.js canvas.toJSON() (an object, or a string holding one)")
    variable_mappings: list[canvas_model.VariableMapping] | None = None
    bleed_mm: float | None = Field(None, ge=0, le=20, description="print PDF bleed on every side (canvas)")


class TemplateUpload(_TemplateBody):
    kind: Literal["html", "canvas"] = "html"
    section: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    format: str = "png"
    javascript: bool = False


class TemplateUpdate(_TemplateBody):
    """A new version: unset name, size and output fields keep the current version's values."""

    kind: Literal["html", "canvas"] | None = None
    name: str | None = Field(None, max_length=200)
    format: str | None = None
    javascript: bool | None = None


def template_json(tv: template_store.TemplateVersion, *, html: bool = False) -> dict[str, Any]:
    data = tv.model_dump()
    data["template_id"] = tv.id
    data["placeholders"] = [p.model_dump() for p in tv.placeholders]
    if html and tv.kind == "canvas":
        canvas = template_store.canvas_of(tv)
        data["canvas_json"] = canvas.canvas_json
        data["variable_mappings"] = [m.model_dump() for m in canvas.variable_mappings]
    elif html:
        data["html_content"] = template_store.html_of(tv)
    return data


def _check_kind_fields(kind: str, body: _TemplateBody, *, update: bool = False) -> None:
    """Each kind's own source field; the other kind's is refused rather than ignored."""
    if kind == "html":
        if body.canvas_json is not None or body.variable_mappings is not None:
            raise ApiError(Reason.VALIDATION_ERROR, "canvas_json and variable_mappings are for kind: canvas",
                           {"kind": kind})
        if body.html_content is None:
            raise ApiError(Reason.VALIDATION_ERROR, "html_content is required for an html template",
                           {"missing": ["html_content"]})
    else:
        if body.html_content is not None:
            raise ApiError(Reason.VALIDATION_ERROR, "html_content is for kind: html; a canvas template "
                           "carries canvas_json", {"kind": kind})
        if body.canvas_json is None and not update:
            raise ApiError(Reason.VALIDATION_ERROR, "canvas_json is required for a canvas template",
                           {"missing": ["canvas_json"]})
        if not update and (body.width is None or body.height is None):
            raise ApiError(Reason.VALIDATION_ERROR, "a canvas template needs width and height (pixels)",
                           {"missing": [f for f in ("width", "height") if getattr(body, f) is None]})


def _store_canvas(section: str, name: str, body: _TemplateBody, *, fmt: str, size: str | None,
                  current: template_store.TemplateVersion | None = None) -> template_store.TemplateVersion:
    """Validate and store a canvas version; an update keeps what it does not give (the canvas,
    its size, its mappings) from ``current`` when that is a canvas too."""
    base = template_store.canvas_of(current) if current is not None and current.kind == "canvas" else None
    canvas_json = body.canvas_json if body.canvas_json is not None else (base.canvas_json if base else None)
    if canvas_json is None:
        raise ApiError(Reason.VALIDATION_ERROR, "canvas_json is required for a canvas template",
                       {"missing": ["canvas_json"]})
    width = body.width or (base.width if base else None)
    height = body.height or (base.height if base else None)
    if width is None or height is None:
        raise ApiError(Reason.VALIDATION_ERROR, "a canvas template needs width and height (pixels)",
                       {"missing": [f for f, v in (("width", width), ("height", height)) if v is None]})
    mappings = body.variable_mappings if body.variable_mappings is not None else (
        list(base.variable_mappings) if base else [])
    canvas = canvas_model.validate(canvas_json, width, height, mappings)
    bleed = body.bleed_mm if body.bleed_mm is not None else (current.bleed_mm if current else None)
    return template_store.upload_canvas(section, name, canvas, set_as_active=body.set_as_active, size=size,
                                        fmt=fmt, bleed_mm=bleed, placeholders=body.placeholders)


def _store(section: str, name: str, html: str, **kwargs: Any) -> template_store.TemplateVersion:
    try:
        return template_store.upload(section, name, html, **kwargs)
    except (templating.TemplateTooLarge, templating.TemplateSyntaxError, templating.TemplateTimeout,
            templating.TemplateTooDeep, templating.TemplateOutputTooLarge):
        raise  # their own reasons: the source's size, its syntax, a budget it cannot stay within
    except templating.TemplateError as exc:
        raise ApiError(Reason.TEMPLATE_INVALID, str(exc)) from None


def _check_output(fmt: str | None, size: str | None) -> None:
    from posterflow.render import sizes

    try:
        if fmt:
            sizes.parse_format(fmt)
        if size:
            sizes.resolve_size(size)
    except (sizes.UnsupportedFormat, sizes.UnsupportedSize) as exc:
        raise ApiError(Reason.UNSUPPORTED_OUTPUT, str(exc)) from None


def _check_javascript(requested: bool | None) -> None:
    """Template JavaScript is a deployment decision: refused unless the setting allows it."""
    if requested and not config.template_javascript_allowed():
        raise ApiError(Reason.JAVASCRIPT_DISABLED,
                       f"template JavaScript is disabled on this deployment "
                       f"({config.ENV_TEMPLATE_JAVASCRIPT} is not 'allow'); upload it with javascript: false")


@router.post("/api/templates/upload")
def upload(body: Annotated[TemplateUpload, Body()]) -> tuple[dict[str, Any], int]:
    _check_output(body.format, body.size)
    _check_kind_fields(body.kind, body)
    if body.kind == "canvas":
        if body.javascript:
            raise ApiError(Reason.VALIDATION_ERROR, "javascript is for html templates", {"kind": "canvas"})
        tv = _store_canvas(body.section, body.name, body, fmt=body.format, size=body.size)
        return {"success": True, "message": f"template {tv.id} stored", **template_json(tv)}, 201
    _check_javascript(body.javascript)
    assert body.html_content is not None
    tv = _store(body.section, body.name, body.html_content, set_as_active=body.set_as_active,
                width=body.width, height=body.height, size=body.size, fmt=body.format,
                javascript=body.javascript, placeholders=body.placeholders)
    return {"success": True, "message": f"template {tv.id} stored", **template_json(tv)}, 201


@router.get("/api/templates")
def list_all(section: Annotated[str | None, Query()] = None) -> dict[str, Any]:
    return {"templates": [template_json(t) for t in template_store.list_templates(section)]}


@router.get("/api/templates/<template_id>")
def get_one(template_id: str) -> dict[str, Any]:
    return template_json(template_store.get(template_id), html=True)


@router.put("/api/templates/<template_id>")
def update(template_id: str, body: Annotated[TemplateUpdate, Body()]) -> dict[str, Any]:
    current = template_store.get(template_id)
    _check_output(body.format, body.size)
    kind = body.kind or current.kind
    _check_kind_fields(kind, body, update=True)
    if kind == "canvas":
        tv = _store_canvas(current.section, body.name or current.name, body, fmt=body.format or current.format,
                           size=body.size or current.size, current=current)
        return {"success": True, "message": f"template {tv.id} stored", **template_json(tv)}
    if body.html_content is None:
        raise ApiError(Reason.VALIDATION_ERROR, "html_content is required for an html template",
                       {"missing": ["html_content"]})
    # Only an explicit request: a version inheriting an old javascript: true is stored as is
    # and still renders with JavaScript off (the engine checks the setting too).
    _check_javascript(body.javascript)
    tv = _store(current.section, body.name or current.name, body.html_content, set_as_active=body.set_as_active,
                width=body.width or current.width, height=body.height or current.height,
                size=body.size or current.size, fmt=body.format or current.format,
                javascript=current.javascript if body.javascript is None else body.javascript,
                placeholders=body.placeholders)
    return {"success": True, "message": f"template {tv.id} stored", **template_json(tv)}


@router.post("/api/templates/<template_id>/activate")
def activate(template_id: str) -> dict[str, Any]:
    tv = template_store.activate(template_id)
    return {"success": True, "message": f"{tv.id} is now active", **template_json(tv)}

# Validation off for this route: Powertools would validate the image bytes as text.
@router.get("/api/templates/<template_id>/preview", enable_validation=False)
def preview(template_id: str) -> Response[bytes]:
    fmt = request.query("format")
    tv = template_store.get(template_id)
    data = templating.sample_data(tv.placeholders)
    output = invoke_render({"template_id": tv.id, "custom_data": data, "format": fmt})
    image = read_output(output["key"])
    return Response(status_code=200, content_type=output["content_type"],
                    body=image, headers={"X-Template-Version": str(tv.version)}, compress=False)
