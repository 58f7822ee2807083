"""One item's canvas: a validated :class:`~posterflow.posters.canvas.model.CanvasTemplate` filled
with the item's data, ready for the renderer (:class:`~posterflow.posters.canvas.spec.FilledCanvas`).

Pure Python; the only way out is the ``fetch`` callback that reads an image source (the
pipeline passes the overlays' resolver, :mod:`posterflow.net.sources`: same source rules and
network policy, ``s3://`` included).

- ``text`` mappings replace the object's text with the field's value, line breaks kept
  (``\\r\\n`` and ``\\r`` become ``\\n``); the renderer shrinks it to fit its box (a
  :class:`FitRule`) or fails the item with ``text_overflow``.
- ``{{placeholders}}`` in any other text object (groups included) are filled from the data.
- Data keys match names as in HTML templates (case- and whitespace-insensitive, ``columns``
  subset); a mapped field or placeholder without a value fails the item with
  ``missing_placeholders`` naming every one.
- ``image`` mappings read the source, crop it to the box's proportions (centred: the image
  covers the box) and scale it to the box's output pixels; the object becomes that image.
  A refused, missing or broken source fails the item naming the field and the source.
- ``qr`` mappings become an image object of the value's QR code (:mod:`posterflow.posters.qr`);
  a value too long for a QR code fails the item with ``qr_too_long``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PIL import Image, ImageOps

from posterflow.errors import PosterflowError, Reason
from posterflow.posters import qr
from posterflow.posters.canvas.errors import CanvasError, QrTooLong
from posterflow.posters.canvas.model import (
    PLACEHOLDER,
    CanvasTemplate,
    VariableMapping,
    family,
    text_objects,
    text_placeholder_names,
)
from posterflow.posters.canvas.spec import MIN_SCALE_DEFAULT, CanvasOutput, FilledCanvas, FitRule, ImageFit
from posterflow.posters.templating import MissingPlaceholders, normalize_key
from posterflow.posters.templating.placeholders import select_data

Fetch = Callable[[str, str], bytes]
"""``fetch(source, what)``: the bytes of an image source; raises a PosterflowError saying why not."""

MAX_TEXT_CHARS = 10_000
"""Longest text one object may get once filled: far beyond any box, bounded before the renderer."""
MAX_IMAGE_PIXELS = 50_000_000
"""Largest decoded image a mapping accepts (a decompression bomb is refused before decoding)."""
MAX_IMAGE_SIDE = 5000
_GEOMETRY = ("left", "top", "angle", "originX", "originY", "flipX", "flipY", "skewX", "skewY", "opacity",
             "visible", "shadow", "clipPath")


def _value_text(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _missing(template: CanvasTemplate, available: Mapping[str, Any]) -> list[str]:
    names = [m.field for m in template.variable_mappings] + text_placeholder_names(template)
    missing: dict[str, str] = {}
    for name in names:
        key = normalize_key(name)
        value = available.get(key)
        if value is None or (isinstance(value, str) and value == "" and _is_media(template, key)):
            missing.setdefault(key, name)
    return sorted(missing.values())


def _is_media(template: CanvasTemplate, key: str) -> bool:
    """An empty image source or QR value is no value (an empty text is a value, as in HTML)."""
    return any(normalize_key(m.field) == key and m.type in ("image", "qr") for m in template.variable_mappings)


def _fill_placeholders(text: str, available: Mapping[str, Any]) -> str:
    return PLACEHOLDER.sub(lambda m: _value_text(available[normalize_key(m.group(1))]), text)


def _empty_styles(obj: dict[str, Any]) -> None:
    # Per-character styles are indexed by line and character: they cannot follow new text.
    if "styles" in obj:
        obj["styles"] = [] if isinstance(obj["styles"], list) else {}


def _set_text(obj: dict[str, Any], text: str, where: str) -> None:
    if len(text) > MAX_TEXT_CHARS:
        raise CanvasError(f"{where}: text of {len(text)} characters is over {MAX_TEXT_CHARS}",
                          reason=Reason.TEXT_OVERFLOW, details={"object": where, "max_chars": MAX_TEXT_CHARS})
    if obj.get("text") != text:
        obj["text"] = text
        _empty_styles(obj)


def _image_type(obj: dict[str, Any]) -> str:
    """``image`` in a Fabric 5 document, ``Image`` in a Fabric 6/7 one (as its objects are spelled)."""
    kind = obj.get("type")
    return "Image" if isinstance(kind, str) and kind[:1].isupper() else "image"


def _number(obj: dict[str, Any], key: str, default: float) -> float:
    v = obj.get(key, default)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else default


def _box(obj: dict[str, Any]) -> tuple[float, float]:
    """The box's size on the canvas (CSS pixels): width/height times the object's scale, at most
    :data:`MAX_IMAGE_SIDE` (a larger box is off any canvas anyway)."""
    return (min(MAX_IMAGE_SIDE, _number(obj, "width", 0) * abs(_number(obj, "scaleX", 1))),
            min(MAX_IMAGE_SIDE, _number(obj, "height", 0) * abs(_number(obj, "scaleY", 1))))


def _image_object(obj: dict[str, Any], src: str, natural: tuple[int, int], *, smoothing: bool) -> dict[str, Any]:
    """An image object drawn exactly over ``obj``'s box: its natural size, scaled to the box."""
    box_w, box_h = _box(obj)
    out: dict[str, Any] = {k: copy.deepcopy(obj[k]) for k in _GEOMETRY if k in obj}
    scale_x, scale_y = box_w / natural[0], box_h / natural[1]
    out.update(type=_image_type(obj), width=natural[0], height=natural[1], scaleX=scale_x, scaleY=scale_y,
               src=src, crossOrigin=None, cropX=0, cropY=0, filters=[], imageSmoothing=smoothing, strokeWidth=0,
               stroke=None)
    clip = out.get("clipPath")
    if isinstance(clip, dict) and not clip.get("absolutePositioned") and scale_x > 0 and scale_y > 0:
        # A clip path lives in the object's own units, which change with its scale: keep it where
        # it was on the canvas (a photo clipped to a circle stays that circle).
        fx = abs(_number(obj, "scaleX", 1)) / scale_x
        fy = abs(_number(obj, "scaleY", 1)) / scale_y
        clip.update(left=_number(clip, "left", 0) * fx, top=_number(clip, "top", 0) * fy,
                    scaleX=_number(clip, "scaleX", 1) * fx, scaleY=_number(clip, "scaleY", 1) * fy)
    if "version" in obj:
        out["version"] = obj["version"]
    return out


def _qr_object(obj: dict[str, Any], value: str) -> dict[str, Any]:
    box_w, box_h = _box(obj)
    w, h = max(1, round(box_w)), max(1, round(box_h))
    return _image_object(obj, qr.qr_data_url(value, w, h), (w, h), smoothing=False)


def _cover(data: bytes, box: tuple[float, float], scale: float) -> tuple[str, tuple[int, int]]:
    """The image cropped to the box's proportions (centred) and sized to its output pixels, as a data URL."""
    target = (max(1, min(MAX_IMAGE_SIDE, round(box[0] * scale))), max(1, min(MAX_IMAGE_SIDE, round(box[1] * scale))))
    # A photo or logo shared by a mailing's rows is decoded once per instance: the results (not
    # the sources, up to 20 MB each) of the last few are kept, keyed by the source's digest.
    key = (hashlib.sha256(data).digest(), target)
    with _COVERS_LOCK:
        if key in _COVERS:
            _COVERS.move_to_end(key)
            return _COVERS[key]
    result = _cover_image(data, target)
    with _COVERS_LOCK:
        _COVERS[key] = result
        while len(_COVERS) > _COVERS_KEPT:
            _COVERS.popitem(last=False)
    return result


_COVERS: OrderedDict[tuple[bytes, tuple[int, int]], tuple[str, tuple[int, int]]] = OrderedDict()
_COVERS_LOCK = threading.Lock()
_COVERS_KEPT = 16


def _cover_image(data: bytes, target: tuple[int, int]) -> tuple[str, tuple[int, int]]:
    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only: the size is checked before decoding
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise ValueError(f"{img.width}x{img.height} is over {MAX_IMAGE_PIXELS} pixels")
            # A JPEG decodes at 1/2, 1/4 or 1/8 when that is still at least the target: much faster.
            img.draft("RGB", target)
            img.load()
            image = ImageOps.exif_transpose(img)
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ValueError(f"not a usable image: {exc}") from None
    # Cover: the largest centred crop of the box's proportions, resized to the target.
    ratio = target[0] / target[1]
    w, h = image.size
    crop_w, crop_h = (h * ratio, h) if w / h > ratio else (w, w / ratio)
    left, top = (w - crop_w) / 2, (h - crop_h) / 2
    fitted = image.resize(target, Image.Resampling.LANCZOS, box=(left, top, left + crop_w, top + crop_h),
                          reducing_gap=3.0)
    buf = io.BytesIO()
    if fitted.mode in ("RGBA", "LA", "P") and (fitted.mode != "P" or "transparency" in fitted.info):
        fitted.convert("RGBA").save(buf, "PNG", compress_level=1)
        mime = "image/png"
    else:
        fitted.convert("RGB").save(buf, "JPEG", quality=90)
        mime = "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}", target


def _short(source: str) -> str:
    return source if len(source) <= 80 else source[:60] + "…"


def _image(obj: dict[str, Any], m: VariableMapping, source: str, fetch: Fetch, scale: float) -> dict[str, Any]:
    what = f"image for {m.field!r}"
    details = {"field": m.field, "source": _short(source), "index": m.index}
    try:
        data = fetch(source, what)
    except PosterflowError as exc:
        raise CanvasError(f"{what} (source {_short(source)!r}): {exc.message}", reason=exc.reason,
                          details=details) from None
    try:
        src, natural = _cover(data, _box(obj), scale)
    except ValueError as exc:
        raise CanvasError(f"{what} (source {_short(source)!r}): {exc}", reason=Reason.OVERLAY_FAILED,
                          details=details) from None
    return _image_object(obj, src, natural, smoothing=True)


def fill(template: CanvasTemplate, data: Mapping[str, Any], *, output: CanvasOutput | None = None,
         columns: Sequence[str] | None = None, fetch: Fetch | None = None,
         min_scale: float = MIN_SCALE_DEFAULT) -> FilledCanvas:
    """The item's :class:`FilledCanvas`. Raises :class:`MissingPlaceholders` (every field
    without a value), :class:`QrTooLong`, or a :class:`CanvasError` naming the image source."""
    out = output or CanvasOutput()
    available = select_data(data, columns)
    missing = _missing(template, available)
    if missing:
        raise MissingPlaceholders(missing)
    doc = copy.deepcopy(template.canvas_json)
    objects: list[dict[str, Any]] = doc["objects"]
    mapped = {m.index for m in template.variable_mappings}
    fit: list[FitRule] = []
    images: list[ImageFit] = []
    # Placeholders first (a mapped object is replaced whole, so its own are never read).
    for i, obj in enumerate(objects):
        if i in mapped:
            continue
        targets = [obj] if family(obj.get("type")) == "text" else list(text_objects([obj]))
        for target in targets:
            text = target.get("text") or ""
            filled = _fill_placeholders(text, available)
            if filled != text:
                _set_text(target, filled, f"objects[{i}]")
                if target is obj:
                    fit.append(FitRule(index=i, min_scale=min_scale))
    for m in template.variable_mappings:
        obj, value = objects[m.index], available[normalize_key(m.field)]
        if m.type == "text":
            _set_text(obj, _value_text(value), f"objects[{m.index}] ({m.field!r})")
            fit.append(FitRule(index=m.index, min_scale=min_scale, field=m.field))
        elif m.type == "qr":
            try:
                objects[m.index] = _qr_object(obj, _value_text(value))
            except QrTooLong as exc:
                raise QrTooLong(f"qr for {m.field!r}: {exc.message}",
                                details={**(exc.details or {}), "field": m.field, "index": m.index}) from None
        else:
            if fetch is None:
                raise CanvasError(f"image for {m.field!r}: no image sources here", reason=Reason.OVERLAY_REFUSED,
                                  details={"field": m.field})
            objects[m.index] = _image(obj, m, _value_text(value), fetch, out.scale)
            images.append(ImageFit(index=m.index))
    return FilledCanvas(canvas_json=doc, width=template.width, height=template.height,
                        fit=sorted(fit, key=lambda r: r.index), images=images, output=out)
