"""Canvas templates (seed 002) through the REST API on the local cloud: upload, versions,
activate, ``_latest``, placeholder metadata, and each bad upload refused naming what is wrong."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from posterflow import aws, config
from tests.integration.helpers import api

EVENTS = Path(__file__).resolve().parents[2] / "events" / "templates"


def postcard(name: str = "postcard.fabric6.json") -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EVENTS / name).read_text())
    body["section"] = f"{body['section']}-{uuid.uuid4().hex[:6]}"
    return body


@pytest.mark.parametrize("name", ["postcard.fabric5.json", "postcard.fabric6.json"])
def test_upload_versions_activate_and_get(cloud: Any, name: str) -> None:
    body = postcard(name)
    status, created, _ = api(cloud, "POST", "/api/templates/upload", body)
    assert status == 201, created
    section = body["section"]
    assert created["kind"] == "canvas" and created["template_id"] == f"{section}_v1" and created["is_active"]
    assert (created["width"], created["height"]) == (900, 600)
    assert sorted(p["name"] for p in created["placeholders"]) == [
        "address", "expires", "first_name", "name", "offer_code", "offer_url", "photo"]
    # Stored beside the HTML templates, under the tenant's prefix, as JSON.
    key = created["html_key"]
    assert key.startswith("templates/") and key.endswith(f"/{section}/v000001.json")
    stored = json.loads(aws.client("s3").get_object(Bucket=config.bucket(), Key=key)["Body"].read())
    assert stored["canvas_json"] == body["canvas_json"] and len(stored["variable_mappings"]) == 4

    # A new version changing only the mappings keeps the canvas; not active until activated.
    fewer = [m for m in body["variable_mappings"] if m.get("type") != "qr"]
    status, v2, _ = api(cloud, "PUT", f"/api/templates/{section}_latest",
                        {"variable_mappings": fewer, "set_as_active": False})
    assert status == 200, v2
    assert v2["version"] == 2 and v2["kind"] == "canvas" and not v2["is_active"]
    assert sorted(p["name"] for p in v2["placeholders"]) == ["address", "expires", "first_name", "name",
                                                             "offer_code", "photo"]
    status, latest, _ = api(cloud, "GET", f"/api/templates/{section}_latest")
    assert status == 200 and latest["version"] == 1 and len(latest["variable_mappings"]) == 4
    assert latest["canvas_json"] == body["canvas_json"] and "html_content" not in latest
    status, _, _ = api(cloud, "POST", f"/api/templates/{section}_v2/activate")
    assert status == 200
    status, latest, _ = api(cloud, "GET", f"/api/templates/{section}")
    assert latest["version"] == 2 and [m["index"] for m in latest["variable_mappings"]] == [2, 3, 5]
    status, listed, _ = api(cloud, "GET", f"/api/templates?section={section}")
    assert [(t["version"], t["kind"], t["is_active"]) for t in listed["templates"]] == [
        (1, "canvas", False), (2, "canvas", True)]


def test_html_templates_default_to_kind_html(cloud: Any) -> None:
    section = f"plain-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload",
                          {"section": section, "name": "n", "html_content": "<b>{{name}}</b>"})
    assert status == 201 and body["kind"] == "html"
    status, body, _ = api(cloud, "GET", f"/api/templates/{section}_latest")
    assert body["html_content"] == "<b>{{name}}</b>" and "canvas_json" not in body


def _refused(cloud: Any, body: dict[str, Any], status: int = 422) -> dict[str, Any]:
    got, answer, _ = api(cloud, "POST", "/api/templates/upload", body)
    assert got == status, answer
    error: dict[str, Any] = answer["error"]
    return error


def test_each_bad_mapping_is_refused_naming_it(cloud: Any) -> None:
    base = postcard()
    cases = [
        ({"index": 12, "field": "zip"}, "index out of range"),
        ({"index": 7, "field": "link", "type": "qr"}, "needs an object with a box"),
        ({"index": 1, "field": "x", "type": "barcode"}, "unknown type"),
        ({"index": 0, "field": "x"}, "a text mapping needs a text object"),
    ]
    for mapping, says in cases:
        body = copy.deepcopy(base)
        # The photo's mapping stays: an unmapped image placeholder would be refused first.
        body["variable_mappings"] = [*base["variable_mappings"][:2], mapping, base["variable_mappings"][3]]
        error = _refused(cloud, body)
        assert error["code"] == "mapping_invalid", error
        assert error["message"].startswith(f"variable_mappings[2] (index {mapping['index']}"), error
        assert says in error["message"] and error["details"]["mapping"] == 2
    # A mapping that is not even a mapping: the validation error names where it is.
    body = copy.deepcopy(base)
    body["variable_mappings"] = [{"index": "three", "field": "x"}]
    error = _refused(cloud, body)
    assert error["code"] == "validation_error" and "variable_mappings" in json.dumps(error["details"])


def test_what_is_not_a_fabric_canvas_is_refused(cloud: Any) -> None:
    base = postcard()
    for canvas_json, code, says in [
        ("{not json", "canvas_invalid", "not JSON"),
        ({"version": "5.3.0", "shapes": []}, "canvas_invalid", "not a Fabric canvas"),
        ({"objects": [{"type": "rect"}, {"type": "hologram"}]}, "canvas_invalid", "unknown object type 'hologram'"),
        ({"objects": [{"type": "image", "src": "http://169.254.169.254/x", "width": 9, "height": 9}]},
         "canvas_invalid", "data: URL"),
    ]:
        body = {**base, "canvas_json": canvas_json, "variable_mappings": []}
        error = _refused(cloud, body)
        assert error["code"] == code and says in error["message"], error
    # Each kind carries its own source.
    error = _refused(cloud, {**base, "html_content": "<b>x</b>"})
    assert error["code"] == "validation_error" and "html_content is for kind: html" in error["message"]
    error = _refused(cloud, {k: v for k, v in base.items() if k != "width"})
    assert error["code"] == "validation_error" and error["details"]["missing"] == ["width"]
    error = _refused(cloud, {k: v for k, v in base.items() if k != "canvas_json"})
    assert error["code"] == "validation_error" and error["details"]["missing"] == ["canvas_json"]
    error = _refused(cloud, {"section": "x", "name": "x", "html_content": "<b/>", "canvas_json": {"objects": []}})
    assert error["code"] == "validation_error"


def test_a_canvas_over_the_size_limit_is_413(cloud: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    body = postcard()
    monkeypatch.setenv("POSTERFLOW_CANVAS_MAX_BYTES", "2000")  # the API runs in this process
    error = _refused(cloud, body, 413)
    assert error["code"] == "template_too_large" and error["details"]["max_bytes"] == 2000


def test_a_canvas_template_is_its_tenants_alone(cloud: Any) -> None:
    a, b = {"x-api-key": "canvas-tenant-a"}, {"x-api-key": "canvas-tenant-b"}
    body = postcard()
    status, created, _ = api(cloud, "POST", "/api/templates/upload", body, headers=a)
    assert status == 201, created
    status, tenant, _ = api(cloud, "GET", "/api/webhook-secret", headers=a)
    assert created["html_key"].startswith(f"templates/{tenant['tenant']}/{body['section']}/")
    template_id = f"{body['section']}_latest"
    for method, path in (("GET", f"/api/templates/{template_id}"), ("GET", f"/api/templates/{template_id}/preview")):
        status, answer, _ = api(cloud, method, path, headers=b)
        assert status == 404 and answer["error"]["code"] == "template_not_found", (path, answer)
    status, answer, _ = api(cloud, "PUT", f"/api/templates/{template_id}", {"variable_mappings": []}, headers=b)
    assert status == 404
    status, mine, _ = api(cloud, "GET", f"/api/templates/{template_id}", headers=a)
    assert status == 200 and mine["version"] == 1
