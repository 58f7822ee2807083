"""A Fabric.js canvas template: the ``canvas.toJSON()`` document, its pixel size and its variable
mappings by index (seed 002), validated once at upload so every render can trust it.

Both Fabric 5 (lowercase ``type``: ``textbox``, ``i-text``, ``rect`` …) and Fabric 6/7 (class
names: ``Textbox``, ``IText``, ``Rect``, ``Image`` …) documents are accepted as uploaded; the
renderer loads them with the pinned Fabric bundle. Validation refuses, with the offending object
or mapping named: a document that is not JSON or not a Fabric canvas, an unknown object type,
too many objects, groups nested too deep, a document over the size limit, an image whose
``src`` is not a ``data:`` URL (designed-in images travel with the template: a render reads no
network), and mappings whose index is out of range, whose type is unknown, or whose object
cannot take them (a ``qr``/``image`` mapping needs an object with a box, a ``text`` mapping a
text object).

Placeholders of a canvas template are its mapped fields plus the ``{{name}}`` placeholders
found in its text objects (groups included).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from posterflow import config
from posterflow.errors import Reason
from posterflow.posters.canvas.errors import CanvasInvalid, CanvasTooLarge, MappingInvalid
from posterflow.posters.templating import Placeholder, normalize_key
from posterflow.posters.templating.placeholders import infer_type, sample_for

MappingType = Literal["text", "image", "qr"]
MAPPING_TYPES: tuple[str, ...] = ("text", "image", "qr")

MAX_OBJECTS = 1000
"""Objects in one canvas, every level (groups' children and clip paths) counted."""
MAX_GROUP_DEPTH = 8
"""Groups inside groups; real designs use one or two."""
MAX_MAPPINGS = 200
MAX_SIDE = 5000
"""Largest canvas width/height in pixels (the renderer's page limit)."""

# Fabric 5's lowercase types and Fabric 6/7's class names, by family.
_TEXT = {"text", "i-text", "textbox", "Text", "IText", "Textbox", "FabricText"}
_IMAGE = {"image", "Image", "FabricImage"}
_GROUP = {"group", "Group"}
_SHAPES = {
    "rect", "circle", "ellipse", "triangle", "line", "polyline", "polygon", "path",
    "Rect", "Circle", "Ellipse", "Triangle", "Line", "Polyline", "Polygon", "Path",
}
Family = Literal["text", "image", "group", "shape"]

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:[ \-][A-Za-z0-9_]+)*)\s*\}\}")
"""``{{name}}`` in a text object (spaces inside the braces allowed; names as HTML templates')."""


def family(obj_type: Any) -> Family | None:
    """The family of a Fabric ``type`` (either spelling), None when unknown."""
    if not isinstance(obj_type, str):
        return None
    if obj_type in _TEXT:
        return "text"
    if obj_type in _IMAGE:
        return "image"
    if obj_type in _GROUP:
        return "group"
    if obj_type in _SHAPES:
        return "shape"
    return None


class VariableMapping(BaseModel):
    """``{"index": 3, "field": "address", "type": "text"}``: the top-level object ``index``
    takes the item's ``field``. ``type`` is checked by :func:`validate` (so an unknown one is
    named with its mapping, not a generic validation error)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int
    field: str = Field(min_length=1, max_length=200)
    type: str = "text"


class CanvasTemplate(BaseModel):
    """What is stored for a canvas version (the S3 document) and what filling reads."""

    model_config = ConfigDict(frozen=True)

    canvas_json: dict[str, Any]
    width: int = Field(ge=1, le=MAX_SIDE)
    height: int = Field(ge=1, le=MAX_SIDE)
    variable_mappings: list[VariableMapping] = Field(default_factory=list)

    def mapping_for(self, index: int) -> VariableMapping | None:
        for m in self.variable_mappings:
            if m.index == index:
                return m
        return None


def max_bytes() -> int:
    """Largest canvas JSON accepted (UTF-8 bytes of its compact serialisation)."""
    return int(config.CANVAS_MAX_BYTES.required())


def _where(mapping_no: int, m: VariableMapping) -> str:
    return f"variable_mappings[{mapping_no}] (index {m.index}, field {m.field!r}, type {m.type!r})"


def _has_box(obj: dict[str, Any]) -> bool:
    def positive(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0

    return positive(obj.get("width")) and positive(obj.get("height"))


def _walk(objects: list[Any], path: str, depth: int, counter: list[int],
          replaced: frozenset[int] = frozenset()) -> None:
    """Check every object; ``replaced`` are the top-level indices an image or qr mapping replaces
    (their own ``src`` is never loaded)."""
    for i, obj in enumerate(objects):
        where = f"{path}[{i}]"
        if not isinstance(obj, dict):
            raise CanvasInvalid(f"{where} is not a Fabric object (an object with a 'type')", details={"object": where})
        counter[0] += 1
        if counter[0] > MAX_OBJECTS:
            raise CanvasInvalid(f"the canvas has more than {MAX_OBJECTS} objects", details={"max_objects": MAX_OBJECTS})
        kind = family(obj.get("type"))
        if kind is None:
            raise CanvasInvalid(f"{where} has unknown object type {obj.get('type')!r}",
                                details={"object": where, "type": obj.get("type")})
        if kind == "text" and not isinstance(obj.get("text", ""), str):
            raise CanvasInvalid(f"{where}: 'text' must be a string", details={"object": where})
        if kind == "image" and i not in replaced:
            src = obj.get("src")
            if not (isinstance(src, str) and src.startswith("data:")):
                raise CanvasInvalid(f"{where}: an image's src must be a data: URL (a render reads no network); "
                                    "map it with an image mapping to fill it per item",
                                    details={"object": where})
        if kind == "group":
            if depth + 1 > MAX_GROUP_DEPTH:
                raise CanvasInvalid(f"{where}: groups nest more than {MAX_GROUP_DEPTH} deep",
                                    details={"object": where, "max_depth": MAX_GROUP_DEPTH})
            children = obj.get("objects", [])
            if not isinstance(children, list):
                raise CanvasInvalid(f"{where}: a group's 'objects' must be a list", details={"object": where})
            _walk(children, f"{where}.objects", depth + 1, counter)
        clip = obj.get("clipPath")
        if clip is not None:
            if not isinstance(clip, dict):
                raise CanvasInvalid(f"{where}: clipPath must be a Fabric object", details={"object": where})
            _walk([clip], f"{where}.clipPath", depth + 1, counter)
    _check_pattern_sources(objects, path)


def _check_pattern_sources(value: Any, path: str) -> None:
    """Pattern fills (``{"type": "pattern", "source": …}``) must not reach the network either."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            source = node.get("source")
            if node.get("type") == "pattern" and isinstance(source, str) and not source.startswith("data:"):
                raise CanvasInvalid(f"{where}: a pattern's source must be a data: URL", details={"object": where})
            stack.extend((v, f"{where}.{k}") for k, v in node.items() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(node) if isinstance(v, (dict, list)))


def parse_canvas_json(value: Any) -> dict[str, Any]:
    """The canvas document from an upload's ``canvas_json``: an object, or a string holding one."""
    if isinstance(value, str):
        if len(value.encode("utf-8")) > max_bytes():
            raise CanvasTooLarge(f"canvas_json is over {max_bytes()} bytes", details={"max_bytes": max_bytes()})
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise CanvasInvalid(f"canvas_json is not JSON: {exc}") from None
    if not isinstance(value, dict) or not isinstance(value.get("objects"), list):
        raise CanvasInvalid("canvas_json is not a Fabric canvas: expected an object with an 'objects' list "
                            "(what canvas.toJSON() produces)")
    return value


def validate(canvas_json: Any, width: int, height: int, mappings: list[VariableMapping]) -> CanvasTemplate:
    """The checked template; raises :class:`CanvasInvalid` or :class:`MappingInvalid` naming
    the offending object or mapping."""
    doc = parse_canvas_json(canvas_json)
    size = len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > max_bytes():
        raise CanvasTooLarge(f"canvas_json is {size} bytes; the limit is {max_bytes()} bytes",
                             details={"bytes": size, "max_bytes": max_bytes()})
    for side, v in (("width", width), ("height", height)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_SIDE:
            raise CanvasInvalid(f"{side} must be an integer between 1 and {MAX_SIDE} pixels, got {v!r}")
    replaced = frozenset(m.index for m in mappings if m.type in ("image", "qr"))
    _walk(doc["objects"], "objects", 0, [0], replaced)
    if len(mappings) > MAX_MAPPINGS:
        raise MappingInvalid(f"at most {MAX_MAPPINGS} variable mappings", details={"max_mappings": MAX_MAPPINGS})
    objects: list[dict[str, Any]] = doc["objects"]
    seen: dict[int, int] = {}
    for n, m in enumerate(mappings):
        details = {"mapping": n, "index": m.index, "field": m.field, "type": m.type}
        if m.type not in MAPPING_TYPES:
            raise MappingInvalid(f"{_where(n, m)}: unknown type; use one of {', '.join(MAPPING_TYPES)}",
                                 details=details)
        if not 0 <= m.index < len(objects):
            raise MappingInvalid(f"{_where(n, m)}: index out of range; the canvas has {len(objects)} top-level "
                                 f"objects (0 to {len(objects) - 1})", details=details)
        if m.index in seen:
            raise MappingInvalid(f"{_where(n, m)}: object {m.index} is already mapped by "
                                 f"variable_mappings[{seen[m.index]}]", details=details)
        seen[m.index] = n
        obj = objects[m.index]
        kind = family(obj.get("type"))
        if m.type == "text" and kind != "text":
            raise MappingInvalid(f"{_where(n, m)}: a text mapping needs a text object (textbox, text, i-text), "
                                 f"object {m.index} is {obj.get('type')!r}", details=details)
        if m.type in ("image", "qr") and not _has_box(obj):
            raise MappingInvalid(f"{_where(n, m)}: a {m.type} mapping needs an object with a box "
                                 f"(positive width and height); object {m.index} ({obj.get('type')!r}) has none",
                                 details=details)
        if m.type in ("image", "qr") and kind == "group":
            raise MappingInvalid(f"{_where(n, m)}: a {m.type} mapping cannot replace a group", details=details)
    return CanvasTemplate(canvas_json=doc, width=width, height=height, variable_mappings=list(mappings))


def text_objects(objects: list[Any]) -> Iterator[dict[str, Any]]:
    """Every text object, groups' children included (depth first, in drawing order)."""
    for obj in objects:
        if not isinstance(obj, dict):
            continue
        kind = family(obj.get("type"))
        if kind == "text":
            yield obj
        elif kind == "group" and isinstance(obj.get("objects"), list):
            yield from text_objects(obj["objects"])


def text_placeholder_names(template: CanvasTemplate) -> list[str]:
    """The ``{{name}}`` placeholders of the text objects, first spelling of each, in order found.
    Mapped text objects are replaced whole, so their own placeholders are not read."""
    mapped = {id(template.canvas_json["objects"][m.index]) for m in template.variable_mappings}
    names: dict[str, str] = {}
    for obj in text_objects(template.canvas_json["objects"]):
        if id(obj) in mapped:
            continue
        for name in PLACEHOLDER.findall(obj.get("text") or ""):
            names.setdefault(normalize_key(name), name)
    return list(names.values())


_MAPPING_KIND: dict[str, Any] = {"image": "image", "qr": "url"}


def placeholders(template: CanvasTemplate, given: list[Placeholder] | None = None) -> list[Placeholder]:
    """The mapped fields plus the text objects' placeholders, with inferred types and samples;
    ``given`` metadata replaces the entry of the same (normalised) name. Metadata naming a
    variable the template does not use is refused (``template_invalid``), as for HTML templates."""
    found: dict[str, Placeholder] = {}
    for m in template.variable_mappings:
        key = normalize_key(m.field)
        if key in found:
            continue
        kind = _MAPPING_KIND.get(m.type) or infer_type(m.field)
        sample = sample_for(m.field, kind)
        if m.type == "text" and kind == "text" and "address" in key:
            sample = "1 Sample Street\nSpringfield 12345"
        found[key] = Placeholder(name=m.field, sample=sample, type=kind)
    for name in text_placeholder_names(template):
        key = normalize_key(name)
        if key not in found:
            kind = infer_type(name)
            found[key] = Placeholder(name=name, sample=sample_for(name, kind), type=kind)
    unknown = [p.name for p in given or [] if normalize_key(p.name) not in found]
    if unknown:
        raise CanvasInvalid("placeholder metadata for names the template does not use: " + ", ".join(unknown),
                            reason=Reason.TEMPLATE_INVALID, details={"unknown": unknown})
    for p in given or []:
        key = normalize_key(p.name)
        found[key] = p.model_copy(update={"name": found[key].name})
    return sorted(found.values(), key=lambda p: p.name)
