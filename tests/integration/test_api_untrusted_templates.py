"""Untrusted templates and overlay sources, through the REST API: nothing leaves the sandbox,
and a bad overlay fails its item with the reason."""

from __future__ import annotations

import io
import uuid
from typing import Any

from PIL import Image

from posterflow import jobs
from tests.integration.helpers import api, fetch, wait_for


def _upload(cloud: Any, html: str) -> str:
    section = f"untrusted-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": "u", "html_content": html, "width": 300, "height": 200, "format": "png"})
    assert status == 201, body
    return f"{section}_latest"


def test_template_cannot_reach_metadata_loopback_or_files(cloud: Any) -> None:
    api_port = cloud.gateway.rest_port
    html = ("<div>{{ name }}</div>"
            "<img src='http://169.254.169.254/latest/meta-data/iam/security-credentials/'>"
            f"<img src='http://127.0.0.1:{api_port}/api/jobs'>"
            "<iframe src='file:///etc/passwd'></iframe>"
            "<link rel='stylesheet' href='http://10.0.0.1/x.css'>")
    status, body, _ = api(cloud, "POST", "/api/generate", {"template_id": _upload(cloud, html),
                                                          "custom_data": {"name": "Ada"}})
    assert status == 200, body
    blocked = " ".join(body["blocked_urls"])
    assert "169.254.169.254" in blocked and f"127.0.0.1:{api_port}" in blocked and "10.0.0.1" in blocked
    assert Image.open(io.BytesIO(fetch(body["url"]))).size == (300, 200)


def test_bad_overlays_fail_their_items_with_reasons(cloud: Any) -> None:
    template_id = _upload(cloud, "<div>{{ name }}</div>")
    items = [
        {"name": "ok", "entity_id": "ok"},
        {"name": "missing", "entity_id": "missing", "profile_image": "assets/default/no-such-photo.jpg"},
        {"name": "metadata", "entity_id": "metadata", "logo": "http://169.254.169.254/latest/meta-data/logo.png"},
        {"name": "file", "entity_id": "file", "logo": "file:///etc/passwd"},
        {"name": "garbage", "entity_id": "garbage", "profile_image": "data:image/png;base64,bm90IGFuIGltYWdl"},
    ]
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {"template_id": template_id, "items": items})
    assert status == 202, body
    job = wait_for(lambda: (j := jobs.get_job(body["job_id"])).processed == len(items) and j,
                   timeout=120, interval=0.3, what="overlay batch to finish")
    assert (job.succeeded, job.failed) == (1, 4)
    errors = {i.entity_id: i.error or "" for i in jobs.iter_items(job.job_id)}
    assert errors["ok"] == ""
    assert "does not exist" in errors["missing"]
    assert "not allowed" in errors["metadata"]
    assert errors["file"] and errors["garbage"]
