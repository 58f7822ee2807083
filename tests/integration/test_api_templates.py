"""Template store through the REST API (seed 003): upload, versions, activate, preview, errors."""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.helpers import api

HTML = "<html><body style='margin:0'><div style='font-size:40px'>{{ name }} says {{message}}</div></body></html>"


def test_upload_versions_activate_and_list(cloud: Any) -> None:
    section = f"testimonial-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload",
                          {"section": section, "name": "First", "html_content": HTML, "set_as_active": True})
    assert status == 201, body
    assert body["version"] == 1 and body["template_id"] == f"{section}_v1" and body["is_active"]
    assert sorted(p["name"] for p in body["placeholders"]) == ["message", "name"]

    status, body, _ = api(cloud, "PUT", f"/api/templates/{section}_latest",
                          {"html_content": HTML.replace("says", "wrote"), "set_as_active": False})
    assert status == 200 and body["version"] == 2 and not body["is_active"]
    status, body, _ = api(cloud, "GET", f"/api/templates/{section}_latest")
    assert body["version"] == 1 and "says" in body["html_content"]

    status, body, _ = api(cloud, "POST", f"/api/templates/{section}_v2/activate")
    assert status == 200 and body["version"] == 2
    status, body, _ = api(cloud, "GET", f"/api/templates/{section}")
    assert body["version"] == 2 and "wrote" in body["html_content"]

    status, body, _ = api(cloud, "GET", f"/api/templates?section={section}")
    assert [(t["version"], t["is_active"]) for t in body["templates"]] == [(1, False), (2, True)]


def test_bad_templates(cloud: Any) -> None:
    status, body, _ = api(cloud, "GET", "/api/templates/nosuchsection_latest")
    assert status == 404 and body["error"]["code"] == "template_not_found"
    status, body, _ = api(cloud, "GET", "/api/templates/x_v99")
    assert status == 404
    big = "<div>" + "x" * (2 * 1024 * 1024 + 10) + "</div>"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {"section": "big", "name": "n", "html_content": big})
    assert status == 413 and body["error"]["code"] == "template_too_large"
    status, body, _ = api(cloud, "POST", "/api/templates/upload",
                          {"section": "broken", "name": "n", "html_content": "<div>\n{{ name </div>"})
    assert status == 422 and body["error"]["code"] == "template_syntax_error"
    assert "line" in body["error"]["message"] and body["error"]["details"]["line"] == 2
    status, body, _ = api(cloud, "POST", "/api/templates/upload",
                          {"section": "fmt", "name": "n", "html_content": HTML, "format": "bmp"})
    assert status == 422 and body["error"]["code"] == "unsupported_output"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", raw=b"{not json")
    assert status == 400 and body["error"]["code"] == "malformed_json"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {"section": "x"})
    assert status == 422 and body["error"]["code"] == "validation_error"


def test_seed_curl_without_json_content_type(cloud: Any) -> None:
    # Seed 003 posts JSON with curl -d, i.e. Content-Type application/x-www-form-urlencoded.
    section = f"curl-{uuid.uuid4().hex[:6]}"
    raw = ('{"section":"' + section + '","name":"Test",'
           '"html_content":"<div>{{name}}</div>","set_as_active":true}').encode()
    status, body, _ = api(cloud, "POST", "/api/templates/upload", raw=raw,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 201, body
    assert body["version"] == 1 and body["is_active"]


def test_preview_renders_sample_values(cloud: Any) -> None:
    import io

    from PIL import Image

    section = f"preview-{uuid.uuid4().hex[:6]}"
    api(cloud, "POST", "/api/templates/upload",
        {"section": section, "name": "P", "html_content": HTML, "width": 320, "height": 200})
    status, body, headers = api(cloud, "GET", f"/api/templates/{section}_latest/preview?format=jpeg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(body)).size == (320, 200)
