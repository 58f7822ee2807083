"""Canvas templates (seed 002): validation of Fabric 5 and Fabric 6/7 documents and of variable
mappings by index, and the placeholders a canvas template declares."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from posterflow.errors import Reason
from posterflow.posters.canvas import model
from posterflow.posters.canvas.errors import CanvasInvalid, MappingInvalid

EVENTS = Path(__file__).resolve().parents[2] / "events" / "templates"
FIXTURES = ("postcard.fabric5.json", "postcard.fabric6.json")


def upload_body(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return body


def validate(body: dict[str, Any]) -> model.CanvasTemplate:
    mappings = [model.VariableMapping(**m) for m in body.get("variable_mappings", [])]
    return model.validate(body["canvas_json"], body["width"], body["height"], mappings)


@pytest.mark.parametrize("name", FIXTURES)
def test_the_postcards_validate_with_their_mappings_and_placeholders(name: str) -> None:
    body = upload_body(name)
    template = validate(body)
    assert [(m.index, m.field, m.type) for m in template.variable_mappings] == [
        (2, "name", "text"), (3, "address", "text"), (4, "offer_url", "qr"), (5, "photo", "image")]
    found = {p.name: p for p in model.placeholders(template)}
    # Mapped fields plus the {{placeholders}} of text objects, groups included.
    assert sorted(found) == ["address", "expires", "first_name", "name", "offer_code", "offer_url", "photo"]
    assert found["photo"].type == "image" and found["offer_url"].type == "url"
    assert "\n" in found["address"].sample  # an address sample has lines


def test_fabric5_and_fabric6_spell_the_same_canvas() -> None:
    five, six = (upload_body(n)["canvas_json"]["objects"] for n in FIXTURES)
    assert [o["type"] for o in five] == ["rect", "textbox", "textbox", "textbox", "rect", "image", "group", "line"]
    assert [o["type"] for o in six] == ["Rect", "Textbox", "Textbox", "Textbox", "Rect", "Image", "Group", "Line"]
    assert [model.family(a["type"]) for a in five] == [model.family(b["type"]) for b in six]


def test_a_string_holding_the_json_is_accepted() -> None:
    body = upload_body(FIXTURES[0])
    body["canvas_json"] = json.dumps(body["canvas_json"])
    assert len(validate(body).canvas_json["objects"]) == 8


@pytest.mark.parametrize(("canvas_json", "says"), [
    ("{not json", "not JSON"),
    ([1, 2], "not a Fabric canvas"),
    ({"version": "5.3.0"}, "not a Fabric canvas"),
    ({"objects": {"0": {}}}, "not a Fabric canvas"),
    ({"objects": [{"type": "rect"}, "text"]}, "objects[1] is not a Fabric object"),
    ({"objects": [{"type": "video"}]}, "objects[0] has unknown object type 'video'"),
    ({"objects": [{"type": "group", "objects": [{"type": "Blob"}]}]}, "objects[0].objects[0] has unknown"),
    ({"objects": [{"type": "image", "src": "https://evil.example/x.png", "width": 5, "height": 5}]}, "data: URL"),
    ({"objects": [{"type": "Image", "src": "", "width": 5, "height": 5}]}, "data: URL"),  # unmapped: never filled
    ({"objects": [{"type": "group", "objects": [{"type": "image"}]}]}, "objects[0].objects[0]: an image's src"),
    ({"objects": [{"type": "rect", "fill": {"type": "pattern", "source": "http://x/y.png"}}]}, "pattern"),
    ({"objects": [{"type": "text", "text": 5}]}, "'text' must be a string"),
])
def test_what_is_not_a_fabric_canvas_is_refused_naming_the_object(canvas_json: Any, says: str) -> None:
    with pytest.raises(CanvasInvalid, match=None) as info:
        model.validate(canvas_json, 100, 100, [])
    assert says in info.value.message and info.value.reason == Reason.CANVAS_INVALID


def test_limits_objects_depth_size_and_canvas_size(monkeypatch: pytest.MonkeyPatch) -> None:
    many = {"objects": [{"type": "rect"}] * (model.MAX_OBJECTS + 1)}
    with pytest.raises(CanvasInvalid, match="more than"):
        model.validate(many, 10, 10, [])
    deep: dict[str, Any] = {"type": "rect"}
    for _ in range(model.MAX_GROUP_DEPTH + 1):
        deep = {"type": "group", "objects": [deep]}
    with pytest.raises(CanvasInvalid, match="nest more than"):
        model.validate({"objects": [deep]}, 10, 10, [])
    monkeypatch.setenv("POSTERFLOW_CANVAS_MAX_BYTES", "1000")
    big = {"objects": [{"type": "text", "text": "x" * 2000}]}
    with pytest.raises(CanvasInvalid) as info:
        model.validate(big, 10, 10, [])
    assert info.value.reason == Reason.TEMPLATE_TOO_LARGE and info.value.details["max_bytes"] == 1000
    with pytest.raises(CanvasInvalid) as info:
        model.validate(json.dumps(big), 10, 10, [])
    assert info.value.reason == Reason.TEMPLATE_TOO_LARGE
    monkeypatch.delenv("POSTERFLOW_CANVAS_MAX_BYTES")
    with pytest.raises(CanvasInvalid, match="width must be"):
        model.validate({"objects": []}, 0, 10, [])


@pytest.mark.parametrize(("mapping", "says"), [
    ({"index": 8, "field": "x"}, "index out of range; the canvas has 8 top-level objects (0 to 7)"),
    ({"index": -1, "field": "x"}, "index out of range"),
    ({"index": 1, "field": "x", "type": "barcode"}, "unknown type; use one of text, image, qr"),
    ({"index": 7, "field": "x", "type": "qr"}, "a qr mapping needs an object with a box"),  # a line: height 0
    ({"index": 0, "field": "x"}, "a text mapping needs a text object"),  # a rect
    ({"index": 6, "field": "x", "type": "image"}, "cannot replace a group"),
    ({"index": 2, "field": "again"}, "object 2 is already mapped by variable_mappings[0]"),
])
def test_a_bad_mapping_is_refused_naming_it(mapping: dict[str, Any], says: str) -> None:
    body = upload_body(FIXTURES[1])
    # The photo's mapping stays: an unmapped image placeholder would be refused first.
    body["variable_mappings"] = [body["variable_mappings"][0], mapping, body["variable_mappings"][3]]
    with pytest.raises(MappingInvalid) as info:
        validate(body)
    err = info.value
    assert says in err.message and err.reason == Reason.MAPPING_INVALID
    assert err.message.startswith(f"variable_mappings[1] (index {mapping['index']}, field {mapping['field']!r}")
    assert err.details["mapping"] == 1 and err.details["index"] == mapping["index"]


def test_a_mapped_image_placeholder_needs_no_src() -> None:
    body = upload_body(FIXTURES[0])
    assert body["canvas_json"]["objects"][5]["src"] == ""
    validate(body)  # mapped: replaced per item
    body["variable_mappings"] = body["variable_mappings"][:3]
    with pytest.raises(CanvasInvalid, match=r"objects\[5\]: an image's src must be a data: URL"):
        validate(body)


def test_an_object_without_a_box_cannot_take_an_image() -> None:
    body = upload_body(FIXTURES[0])
    boxless = copy.deepcopy(body["canvas_json"]["objects"][5])
    del boxless["width"]
    body["canvas_json"]["objects"][5] = boxless
    with pytest.raises(MappingInvalid, match="image mapping needs an object with a box"):
        validate(body)


def test_given_placeholder_metadata_replaces_the_inferred_entry() -> None:
    from posterflow.posters.templating import Placeholder

    template = validate(upload_body(FIXTURES[0]))
    found = model.placeholders(template, [Placeholder(name="First Name", sample="Grace", required=False)])
    first = next(p for p in found if p.name == "first_name")
    assert first.sample == "Grace" and not first.required
    with pytest.raises(CanvasInvalid) as info:
        model.placeholders(template, [Placeholder(name="zip_code", sample="1")])
    assert info.value.reason == Reason.TEMPLATE_INVALID and info.value.details == {"unknown": ["zip_code"]}
