"""The interface between filling (:mod:`posterflow.posters.canvas.fill`) and the Chromium canvas
renderer (``posterflow.render.canvas``): what the renderer is given and what it answers.

The renderer receives a :class:`FilledCanvas` — everything already resolved, so it needs no
data, no network and no S3:

- ``canvas_json`` is Fabric's ``canvas.toJSON()`` shape (``{"version", "objects", "background"
  ...}``), Fabric 5 lowercase types or Fabric 6/7 class names, as uploaded;
- every text (``textbox``/``text``/``i-text`` or ``Textbox``/``Text``/``IText``) has its final
  ``text`` (mappings applied, ``{{placeholders}}`` filled, line breaks kept as ``\\n``);
- every ``qr`` mapping's object has been replaced by an ``image`` object (same ``left``, ``top``,
  ``width``, ``height``, ``scaleX``/``scaleY``, ``angle``, ``originX``/``originY``) whose ``src``
  is a ``data:image/svg+xml;base64,…`` URL of a crisp QR code (quiet zone included) — the
  renderer must not smooth it (``imageSmoothing: false`` is set on the object);
- every ``image`` mapping's object is an image over the same box: ``src`` is a ``data:`` URL of the
  source already cropped to the box's proportions (centred) at the output's pixels, ``width`` and
  ``height`` are those pixels and ``scaleX``/``scaleY`` bring them to the box (its ``clipPath``
  rescaled to stay where it was); so covering it (:attr:`ImageFit.cover`: scale to cover, crop
  the overflow, centred) changes nothing;
- any other ``src`` in the template (an image designed into it) is a ``data:`` URL already
  (validation refuses other URLs at upload).

The renderer answers, per canvas, the output bytes (raster: ``width*scale`` × ``height*scale``
pixels; pdf: the paper of ``output.size`` or the canvas size, plus ``bleed_mm`` on every side),
or raises / returns :class:`posterflow.posters.canvas.errors.TextOverflow` naming the object when a
:class:`FitRule` text cannot fit its box at ``min_scale`` of its designed font size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from posterflow.render.sizes import OutputFormat

MIN_SCALE_DEFAULT = 0.5
"""Text shrinks down to this fraction of its designed font size before it is an overflow."""


class FitRule(BaseModel):
    """A text object that must fit its box: shrink its font size (down to ``min_scale`` of the
    designed one) until the wrapped text fits the object's ``width`` × ``height``; else fail with
    ``text_overflow`` naming ``index`` (and ``field`` when a mapping filled it)."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=0, description="position in the canvas's top-level objects")
    min_scale: float = Field(MIN_SCALE_DEFAULT, gt=0, le=1)
    field: str | None = Field(None, description="the mapped field that filled it, for the error message")


class ImageFit(BaseModel):
    """How a mapped image fills its object's box."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=0)
    mode: Literal["cover"] = "cover"


class CanvasOutput(BaseModel):
    """What to produce: the format, the device scale of raster outputs, the paper of a pdf."""

    model_config = ConfigDict(frozen=True)

    format: OutputFormat = "png"
    scale: float = Field(1.0, ge=0.1, le=4.0)
    quality: int = Field(85, ge=1, le=100)
    size: str | None = Field(None, description="print preset of a pdf (postcard-6x4, letter, a4 …); None = canvas size")
    bleed_mm: float = Field(0.0, ge=0, le=20)


class FilledCanvas(BaseModel):
    """One item's canvas, ready to draw (see the module docstring for what is already resolved)."""

    model_config = ConfigDict(frozen=True)

    canvas_json: dict[str, Any]
    width: int = Field(ge=1, le=5000)
    height: int = Field(ge=1, le=5000)
    fit: list[FitRule] = Field(default_factory=list)
    images: list[ImageFit] = Field(default_factory=list)
    output: CanvasOutput = Field(default_factory=CanvasOutput)


class CanvasResult(BaseModel):
    """What the renderer answers for one canvas."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    data: bytes
    format: OutputFormat
    content_type: str
    width: int = Field(description="pixels of a raster output; CSS pixels of the page of a pdf")
    height: int


class CanvasRenderer(Protocol):
    """``posterflow.render.canvas.get_renderer()`` answers the process's one (on the warm engine):
    many canvases in parallel pages; one bad canvas fails alone — its slot holds the exception:
    ``TextOverflow`` for a fit rule, a ``posterflow.render.errors.RenderError`` (``BrowserCrashed``,
    ``RenderTimeout``, ``ChromiumNotFound`` …) for anything else, as ``Engine.render_many`` does."""

    def render_canvases(self, canvases: Sequence[FilledCanvas]) -> list[CanvasResult | Exception]: ...
