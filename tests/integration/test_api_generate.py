"""Posters through the REST API: sync /api/generate (seed 001 shape) and an async batch."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import pytest
from PIL import Image

from tests.integration.helpers import api, fetch, wait_for

HTML = ("<html><body style='margin:0;background:#234'><h1 style='color:white;font:40px sans-serif'>"
        "{{ consumer_name }}: {{ consumer_message }}</h1></body></html>")


@pytest.fixture(scope="module")
def section(cloud: Any) -> str:
    name = f"testimonial-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": name, "name": "Modern Testimonial Design", "html_content": HTML, "set_as_active": True,
        "width": 400, "height": 300})
    assert status == 201, body
    return name


def test_sync_generate_returns_seed_shape_and_fetchable_png(cloud: Any, section: str) -> None:
    status, body, _ = api(cloud, "POST", "/api/generate", {
        "template_id": f"{section}_latest",
        "custom_data": {"consumer_name": "John Doe", "consumer_message": "Great service!", "testimonial_id": "12345"},
        "metadata": {"user_id": 123},
    })
    assert status == 200, body
    assert body["template_version_used"] == 1
    assert body["template_name"] == "Modern Testimonial Design"
    assert isinstance(body["generation_time_ms"], int) and body["generation_time_ms"] > 0
    image = Image.open(io.BytesIO(fetch(body["url"])))
    assert image.format == "PNG" and image.size == (400, 300)


def test_sync_generate_bad_input(cloud: Any, section: str) -> None:
    status, body, _ = api(cloud, "POST", "/api/generate",
                          {"template_id": f"{section}_latest", "custom_data": {"consumer_name": "x"}})
    assert status == 422 and body["error"]["code"] == "missing_placeholders"
    assert body["error"]["details"]["missing"] == ["consumer_message"]
    status, body, _ = api(cloud, "POST", "/api/generate", {"template_id": "nope_latest", "custom_data": {}})
    assert status == 404 and body["error"]["code"] == "template_not_found"
    status, body, _ = api(cloud, "POST", "/api/generate", {"template_id": f"{section}_latest", "format": "gif",
                          "custom_data": {"consumer_name": "a", "consumer_message": "b"}})
    assert status == 422 and body["error"]["code"] == "unsupported_output"
    status, body, _ = api(cloud, "POST", "/api/generate", {"template_id": f"{section}_latest", "size": "billboard",
                          "custom_data": {"consumer_name": "a", "consumer_message": "b"}})
    assert status == 422 and body["error"]["code"] == "unsupported_output"


def test_batch_with_bad_rows_fails_them_alone(cloud: Any, section: str) -> None:
    items: list[dict[str, Any]] = [
        {"consumer_name": f"Person {i}", "consumer_message": "Excellent mentor!", "testimonial_id": str(1000 + i)}
        for i in range(12)
    ]
    for bad in (3, 7):
        del items[bad]["consumer_message"]
    status, body, _ = api(cloud, "POST", "/api/generate-batch",
                          {"template_id": f"{section}_latest", "items": items, "format": "jpeg",
                           "metadata": {"campaign": "Q1_testimonials"}})
    assert status == 202, body
    assert body["success"] and body["total_items"] == 12 and body["token"]
    job_id = body["job_id"]

    def done() -> Any:
        _, b, _ = api(cloud, "GET", f"/api/templates/job/{job_id}")
        return b if b["processed_items"] == 12 else None

    job = wait_for(done, timeout=120, interval=0.5, what="batch to finish")
    assert job["success_count"] == 10 and job["failure_count"] == 2
    by_entity = {r["entity_id"]: r for r in job["results"]}
    assert set(by_entity) == {str(1000 + i) for i in range(12)}
    for bad in ("1003", "1007"):
        assert by_entity[bad]["status"] == "failed" and "consumer_message" in by_entity[bad]["error"]
    good = by_entity["1000"]
    assert good["status"] == "completed" and good["generation_time_ms"] > 0
    assert Image.open(io.BytesIO(fetch(good["url"]))).format == "JPEG"


def test_batch_bad_requests(cloud: Any, section: str) -> None:
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {"template_id": f"{section}_latest", "items": []})
    assert status == 422
    status, body, _ = api(cloud, "POST", "/api/generate-batch", raw=b'{"template_id": ')
    assert status == 400 and body["error"]["code"] == "malformed_json"
    status, body, _ = api(cloud, "POST", "/api/generate-batch",
                          {"template_id": f"{section}_latest", "items": [{"a": 1}] * 10_001})
    assert status == 413 and "POST /api/uploads" in body["error"]["message"]
    status, body, _ = api(cloud, "GET", "/api/jobs/doesnotexist")
    assert status == 404


def test_empty_keys_are_refused(cloud: Any, section: str) -> None:
    # DynamoDB map keys must be non-empty: such input is a 422, not a stored job that cannot be read.
    status, body, _ = api(cloud, "POST", "/api/generate-batch",
                          {"template_id": f"{section}_latest", "items": [{"": "x"}], "metadata": {}})
    assert status == 422 and "empty key" in json.dumps(body)
    status, body, _ = api(cloud, "POST", "/api/generate-async",
                          {"template_id": f"{section}_latest", "custom_data": {}, "metadata": {"a": {"": 1}}})
    assert status == 422 and "empty key" in json.dumps(body)
