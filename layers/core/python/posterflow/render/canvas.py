"""Fabric.js canvases → PNG/JPEG/WebP/PDF in the warm engine's Chromium (seed 002's renderer).

A canvas renders on a pooled page of its own kind ("canvas") of the same engine, browser and
network policy as HTML posters (:mod:`posterflow.render.engine`):

- The page, the pinned Fabric.js bundle (``vendor/fabric.min.js``, checksum checked before it is
  served) and ``vendor/canvas_page.js`` are answered by the engine's router at its internal
  origin; nothing is fetched from a network. The page stays loaded between renders, so Fabric
  is parsed once per page, not per canvas.
- JavaScript runs on canvas pages only for the engine's two scripts: the page's
  Content-Security-Policy admits those two files and nothing else (no inline script, no event
  handler attribute, no ``eval``). The canvas JSON and its texts are a data argument of the
  call, drawn by Fabric on a ``<canvas>``; a pdf places Fabric's ``toSVG()`` as parsed,
  sanitised SVG (no script, ``foreignObject`` or ``on*`` attributes, only data/blob/http(s)
  links). Properties in the JSON that would replace a method of the object's class are dropped.
- Every request the page makes (an image that is not a ``data:`` URL) goes through the engine's
  router and network policy; a refused one fails the canvas naming the URL.
- Raster: the page is the canvas (viewport = canvas size, device scale = ``output.scale``),
  captured as HTML posters are. Pdf: the paper of ``output.size`` (a print preset of
  :data:`~posterflow.render.sizes.PAPER_MM`, or any preset's CSS size at 96 dpi; the canvas's
  size when unset) grown by ``bleed_mm`` on every side, the artwork scaled to cover it
  (centred, the overflow cropped); text stays text (vector, extractable), printed by
  Chromium's ``page.pdf``.
- Fit rules (:class:`~posterflow.posters.canvas.spec.FitRule`) shrink a text's font size in steps
  of 2% of its designed size down to ``min_scale`` until Fabric's measured, wrapped text fits the
  object's designed ``width`` × ``height``; otherwise the canvas fails with
  :class:`~posterflow.posters.canvas.errors.TextOverflow` naming the object — never cut off.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from posterflow.errors import PosterflowError
from posterflow.posters.canvas.errors import TextOverflow
from posterflow.posters.canvas.spec import CanvasResult, FilledCanvas
from posterflow.render.engine import (
    INTERNAL_ORIGIN,
    AsyncRenderEngine,
    InternalFile,
    RenderEngine,
    Slot,
    SlotKey,
    get_engine,
    register_page_kind,
)
from posterflow.render.errors import (
    BrowserCrashed,
    CanvasLoadFailed,
    CanvasRenderError,
    CanvasSourceRefused,
    RenderError,
    UnknownObjectType,
)
from posterflow.render.sizes import CONTENT_TYPES, MAX_BLEED_MM, PageSize, inches, mm_to_px, px_to_mm, resolve_size

logger = logging.getLogger(__name__)

FABRIC_VERSION = "6.9.1"
VENDOR_DIR = Path(__file__).parent / "vendor"
FABRIC_FILE = "fabric.min.js"
PAGE_SCRIPT = "canvas_page.js"
KIND = "canvas"
PAGE_URL = f"{INTERNAL_ORIGIN}/canvas.html"
MAX_MESSAGE = 300
"""Fabric's messages can quote a whole ``data:`` URL: cut to this many characters."""
_FORBIDDEN_KEYS = frozenset({"__proto__", "constructor", "prototype"})

# The engine's two scripts and nothing else may run; images from data:/blob: or through the
# router (which applies the network policy); no connections, frames, fonts from elsewhere.
CSP = (
    "default-src 'none'; "
    f"script-src {INTERNAL_ORIGIN}/{FABRIC_FILE} {INTERNAL_ORIGIN}/{PAGE_SCRIPT}; "
    "style-src 'unsafe-inline'; img-src data: blob: http: https:; font-src data:; "
    "connect-src 'none'; frame-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'"
)
PAGE_HTML = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>posterflow canvas</title>
<style>
  html, body {{ margin: 0; padding: 0; background: #fff; overflow: hidden; }}
  #raster canvas {{ display: block; }}
  #print {{ display: none; overflow: hidden; }}
  #print svg {{ display: block; }}
  body.print #raster {{ display: none; }}
  body.print #print {{ display: block; }}
  @page {{ margin: 0; }}
</style>
<script src="/{FABRIC_FILE}"></script>
<script src="/{PAGE_SCRIPT}"></script>
</head><body><div id="raster"></div><div id="print"></div></body></html>
"""

_RENDER_JS = "(args) => window.posterflowCanvas.render(args)"
_READY_JS = "() => (window.posterflowCanvas && window.posterflowCanvas.version) || null"


def fabric_checksum() -> str:
    """The SHA-256 the repository pins for the bundle (``vendor/fabric.min.js.sha256``)."""
    line = (VENDOR_DIR / f"{FABRIC_FILE}.sha256").read_text().split()
    return line[0]


@lru_cache(maxsize=1)
def page_files() -> Mapping[str, InternalFile]:
    """The canvas page's files by path; the bundle only if its checksum matches the pinned one."""
    bundle = (VENDOR_DIR / FABRIC_FILE).read_bytes()
    digest = hashlib.sha256(bundle).hexdigest()
    if digest != fabric_checksum():
        raise RenderError(f"{FABRIC_FILE} does not match its pinned checksum (sha256 {digest})")
    js = "text/javascript; charset=utf-8"
    return {
        "/canvas.html": InternalFile("text/html; charset=utf-8", PAGE_HTML.encode(), {"content-security-policy": CSP}),
        f"/{FABRIC_FILE}": InternalFile(js, bundle),
        f"/{PAGE_SCRIPT}": InternalFile(js, (VENDOR_DIR / PAGE_SCRIPT).read_bytes()),
    }


register_page_kind(KIND, page_files)


def _plain(value: Any) -> Any:
    """A copy of the JSON without keys that could reach an object's prototype."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in _FORBIDDEN_KEYS}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def paper(canvas: FilledCanvas) -> tuple[float, float]:
    """The pdf's page in millimetres: the paper of ``output.size`` (the canvas at 96 dpi when
    unset) plus ``bleed_mm`` on every side."""
    output = canvas.output
    if not 0 <= output.bleed_mm <= MAX_BLEED_MM:
        raise CanvasRenderError(f"bleed_mm must be between 0 and {MAX_BLEED_MM:g}")
    if output.size:
        width_mm, height_mm = resolve_size(output.size).paper_mm
    else:
        width_mm, height_mm = px_to_mm(canvas.width), px_to_mm(canvas.height)
    return width_mm + 2 * output.bleed_mm, height_mm + 2 * output.bleed_mm


def _size(canvas: FilledCanvas) -> PageSize:
    """The page's viewport and device scale (raster: the canvas × scale; pdf: scale 1)."""
    scale = canvas.output.scale if canvas.output.format != "pdf" else 1.0
    return resolve_size(width=canvas.width, height=canvas.height, scale=scale)


async def _prepare(slot: Slot) -> None:
    page = slot.page
    if slot.prepared and page.url == PAGE_URL:
        return
    page_files()  # a bundle that is not the pinned one fails here, not as a page that never loads
    await page.goto(PAGE_URL, wait_until="load")
    version = await page.evaluate(_READY_JS)
    if version != FABRIC_VERSION:
        raise RenderError(f"the canvas page did not start (Fabric {version!r}, expected {FABRIC_VERSION})")
    slot.prepared = True


def _short(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + "…"


def _raise_for(answer: dict[str, Any], canvas: FilledCanvas, blocked: Sequence[str], request_id: str | None) -> None:
    error = answer.get("error")
    if error is None:
        return
    if error == "text_overflow":
        last = answer["fitted"][-1]
        index = int(last["index"])
        rule = next((r for r in canvas.fit if r.index == index), None)
        field = rule.field if rule else None
        named = f"text object {index}" + (f" (field {field!r})" if field else "")
        box = last.get("box") or [0, 0]
        needed = last.get("needed") or [0, 0]
        raise TextOverflow(
            f"{named} does not fit its {box[0]:.0f}x{box[1]:.0f} box even at {last['scale']:.0%} of its font size "
            f"({last['font_size']:.1f}px): it needs {needed[0]:.0f}x{needed[1]:.0f}",
            index=index,
            field=field,
            details={
                "index": index,
                "field": field,
                "box": box,
                "needed": needed,
                "font_size": last["font_size"],
                "designed_font_size": last.get("designed_font_size"),
            },
        )
    if error == "unknown_type":
        unknown = answer.get("unknown") or []
        names = ", ".join(f"{u['path']}: {u['type']!r}" for u in unknown[:5])
        raise UnknownObjectType(f"unknown Fabric object type ({names})", request_id=request_id, details=unknown)
    if error == "load":
        message = _short(str(answer.get("message") or "unknown error"))
        if blocked:
            raise CanvasSourceRefused(
                f"canvas image refused: {_short(blocked[0])}", request_id=request_id, details={"blocked": list(blocked)}
            )
        raise CanvasLoadFailed(f"Fabric could not load the canvas: {message}", request_id=request_id)
    if error in ("not_text", "not_image"):
        what = "a text" if error == "not_text" else "an image"
        message = f"object {answer.get('index')} is not {what} object"
        raise CanvasRenderError(message, request_id=request_id, details=answer)
    raise CanvasRenderError(f"canvas failed: {error}", request_id=request_id, details=answer)


async def _draw(slot: Slot, canvas: FilledCanvas, size: PageSize, request_id: str | None) -> bytes:
    await _prepare(slot)
    slot.blocked.clear()
    slot.used = True
    page = slot.page
    if slot.viewport != (size.width, size.height):
        await page.set_viewport_size({"width": size.width, "height": size.height})
        slot.viewport = (size.width, size.height)
    output = canvas.output
    pdf = output.format == "pdf"
    args: dict[str, Any] = {
        "canvas": _plain(canvas.canvas_json),
        "width": canvas.width,
        "height": canvas.height,
        "fit": [{"index": r.index, "min_scale": r.min_scale} for r in canvas.fit],
        "images": [{"index": i.index} for i in canvas.images],
        "mode": "svg" if pdf else "raster",
    }
    if pdf:
        width_mm, height_mm = paper(canvas)
        args["page"] = {"width_mm": width_mm, "height_mm": height_mm}
    answer = await page.evaluate(_RENDER_JS, args)
    # The page must still be ours (nothing it loaded may navigate it).
    slot.tainted = page.url != PAGE_URL or len(slot.context.pages) > 1
    _raise_for(answer, canvas, slot.blocked, request_id)
    if pdf:
        return await page.pdf(
            width=inches(width_mm),
            height=inches(height_mm),
            print_background=True,
            margin={"top": "0", "right": "0", "bottom": "0", "left": "0"},
        )
    params: dict[str, Any] = {
        "format": output.format,
        "clip": {"x": 0, "y": 0, "width": size.width, "height": size.height, "scale": size.scale},
        "captureBeyondViewport": False,
        "fromSurface": True,
    }
    if output.format == "png":
        params["optimizeForSpeed"] = True
    else:
        params["quality"] = output.quality
    shot = await slot.cdp.send("Page.captureScreenshot", params)
    return base64.b64decode(shot["data"])


async def render_canvas_async(
    engine: AsyncRenderEngine,
    canvas: FilledCanvas,
    *,
    timeout_s: float | None = None,
    request_id: str | None = None,
) -> CanvasResult:
    """Draw one canvas on ``engine`` (retried once on a fresh page after a browser crash)."""
    size = _size(canvas)
    key: SlotKey = (size.scale, True, None, KIND)

    async def work(slot: Slot) -> bytes:
        return await _draw(slot, canvas, size, request_id)

    for attempt in range(2):
        try:
            data, _ = await engine.run_in_slot(key, size, work, timeout_s=timeout_s, request_id=request_id)
            break
        except BrowserCrashed:
            if attempt == 1:
                raise
            logger.warning("canvas %s hit a crash; retrying once", request_id)
    fmt = canvas.output.format
    if fmt == "pdf":
        width_mm, height_mm = paper(canvas)
        width, height = round(mm_to_px(width_mm)), round(mm_to_px(height_mm))
    else:
        width, height = size.pixel_width, size.pixel_height
    return CanvasResult(data=data, format=fmt, content_type=CONTENT_TYPES[fmt], width=width, height=height)


class CanvasRenderer:
    """:class:`posterflow.posters.canvas.spec.CanvasRenderer` on a synchronous engine."""

    def __init__(self, engine: RenderEngine, *, timeout_s: float | None = None) -> None:
        self.engine = engine
        self.timeout_s = timeout_s

    def render_canvas(self, canvas: FilledCanvas, *, request_id: str | None = None) -> CanvasResult:
        """One canvas; raises :class:`TextOverflow`, a :class:`RenderError` or
        :class:`~posterflow.render.sizes.UnsupportedSize` (a raster over the pixel limit)."""
        return self.engine.call(
            render_canvas_async(self.engine.async_engine, canvas, timeout_s=self.timeout_s, request_id=request_id)
        )

    def render_canvases(self, canvases: Sequence[FilledCanvas]) -> list[CanvasResult | Exception]:
        """Many canvases in parallel pages; a failed one's slot holds its exception."""
        return self.engine.call(self._many(canvases))

    async def _many(self, canvases: Sequence[FilledCanvas]) -> list[CanvasResult | Exception]:
        engine = self.engine.async_engine

        async def one(i: int, canvas: FilledCanvas) -> CanvasResult | Exception:
            started = time.perf_counter()
            try:
                return await render_canvas_async(engine, canvas, timeout_s=self.timeout_s, request_id=str(i))
            except PosterflowError as exc:  # TextOverflow, a RenderError, a size over the limits
                return exc
            except Exception as exc:  # one bad canvas must never take the batch down
                elapsed_ms = (time.perf_counter() - started) * 1000
                logger.exception("canvas %d failed unexpectedly after %.0f ms", i, elapsed_ms)
                return RenderError(f"{type(exc).__name__}: {exc}", request_id=str(i))

        return list(await asyncio.gather(*(one(i, c) for i, c in enumerate(canvases))))


def get_renderer() -> CanvasRenderer:
    """The process's canvas renderer, on the process-wide engine that HTML posters use."""
    return CanvasRenderer(get_engine())
