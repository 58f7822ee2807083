"""Tenancy through the HTTP API: every job, template, idempotency record, output and source is
the calling tenant's (API key); another tenant's ids answer 404 as if they did not exist."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from posterflow import aws
from tests.integration.helpers import api, wait_for

KEY_A = {"x-api-key": "tenant-isolation-a"}
KEY_B = {"x-api-key": "tenant-isolation-b"}
HTML_A = "<div style='width:200px;height:100px;background:#123;color:#fff'>A {{name}}</div>"
HTML_B = "<div style='width:200px;height:100px;background:#321;color:#fff'>B {{name}}</div>"


def _tenant(cloud: Any, headers: dict[str, str]) -> str:
    status, body, _ = api(cloud, "GET", "/api/webhook-secret", headers=headers)
    assert status == 200, body
    return str(body["tenant"])


def _upload(cloud: Any, section: str, html: str, headers: dict[str, str]) -> dict[str, Any]:
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": f"card {html[:10]}", "format": "jpeg", "width": 200, "height": 100,
        "html_content": html}, headers=headers)
    assert status == 201, body
    return dict(body)


@pytest.fixture(scope="module")
def section(cloud: Any) -> str:
    name = f"iso-{uuid.uuid4().hex[:6]}"
    _upload(cloud, name, HTML_A, KEY_A)
    return name


@pytest.fixture(scope="module")
def job_a(cloud: Any, section: str) -> dict[str, Any]:
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {
        "template_id": f"{section}_latest", "items": [{"name": "Ada"}, {"name": "Grace"}]},
        headers={**KEY_A, "Idempotency-Key": "shared-key-1"})
    assert status == 202, body

    def done() -> dict[str, Any] | None:
        _, job, _ = api(cloud, "GET", f"/api/jobs/{body['job_id']}", headers=KEY_A)
        return job if job["status"] == "completed" else None

    return dict(wait_for(done, timeout=60, what="tenant A's batch"))


def test_templates_are_namespaced_per_tenant(cloud: Any, section: str) -> None:
    # B does not see A's section, and a section of the same name is B's own, from version 1.
    assert api(cloud, "GET", f"/api/templates/{section}_latest", headers=KEY_B)[0] == 404
    assert api(cloud, "GET", f"/api/templates/{section}_v1/preview", headers=KEY_B)[0] == 404
    status, listed, _ = api(cloud, "GET", f"/api/templates?section={section}", headers=KEY_B)
    assert status == 200 and listed["templates"] == []
    assert api(cloud, "POST", f"/api/templates/{section}_v1/activate", headers=KEY_B)[0] == 404
    assert api(cloud, "PUT", f"/api/templates/{section}_latest", {"html_content": HTML_B},
               headers=KEY_B)[0] == 404
    mine = _upload(cloud, section, HTML_B, KEY_B)
    assert mine["version"] == 1
    # A's template is untouched: its HTML is still A's, and A still sees only its own version.
    status, a_view, _ = api(cloud, "GET", f"/api/templates/{section}_latest", headers=KEY_A)
    assert status == 200 and a_view["html_content"] == HTML_A and a_view["version"] == 1
    html_keys = {a_view["html_key"], mine["html_key"]}
    assert len(html_keys) == 2
    assert a_view["html_key"].startswith(f"templates/{_tenant(cloud, KEY_A)}/")


def test_jobs_are_invisible_to_other_tenants(cloud: Any, job_a: dict[str, Any]) -> None:
    job_id = job_a["job_id"]
    tenant_a = _tenant(cloud, KEY_A)
    # A's outputs and archive are under A's prefix.
    assert all(r["key"].startswith(f"outputs/{tenant_a}/{job_id}/") for r in job_a["results"])
    assert job_a["archive_url"] and f"archives/{tenant_a}/{job_id}/" in job_a["archive_url"]
    for method, path in (("GET", f"/api/jobs/{job_id}"), ("GET", f"/api/templates/job/{job_id}"),
                         ("POST", f"/api/jobs/{job_id}/cancel"), ("POST", f"/api/jobs/{job_id}/retry"),
                         ("GET", f"/api/batch/status/{job_id}")):
        status, body, _ = api(cloud, method, path, headers=KEY_B)
        assert status == 404, (method, path, body)
        assert job_id in body["error"]["message"] and "token" not in str(body)
    status, listed, _ = api(cloud, "GET", "/api/jobs?limit=1000", headers=KEY_B)
    assert status == 200 and job_id not in {j["job_id"] for j in listed["jobs"]}
    status, listed, _ = api(cloud, "GET", "/api/jobs?limit=1000", headers=KEY_A)
    assert job_id in {j["job_id"] for j in listed["jobs"]}
    # A's own calls still work.
    assert api(cloud, "GET", f"/api/batch/status/{job_id}", headers=KEY_A)[0] == 200


def test_a_listing_cursor_cannot_cross_tenants(cloud: Any, job_a: dict[str, Any]) -> None:
    status, page, _ = api(cloud, "GET", "/api/jobs?limit=1", headers=KEY_A)
    assert status == 200
    if page["next"]:
        status, body, _ = api(cloud, "GET", f"/api/jobs?limit=1&cursor={page['next']}", headers=KEY_B)
        assert status == 422 and body["error"]["code"] == "invalid_cursor"


def test_idempotency_keys_are_per_tenant(cloud: Any, section: str, job_a: dict[str, Any]) -> None:
    # B has its own section of that name (uploaded above or here) and reuses A's key and body.
    api(cloud, "POST", "/api/templates/upload", {"section": section, "name": "b", "html_content": HTML_B},
        headers=KEY_B)
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {
        "template_id": f"{section}_latest", "items": [{"name": "Ada"}, {"name": "Grace"}]},
        headers={**KEY_B, "Idempotency-Key": "shared-key-1"})
    assert status == 202, body
    assert body["job_id"] != job_a["job_id"]


def test_overlays_cannot_read_another_tenants_objects(cloud: Any, section: str, job_a: dict[str, Any]) -> None:
    a_output = job_a["results"][0]["key"]
    api(cloud, "POST", "/api/templates/upload", {"section": section, "name": "b", "html_content": HTML_B},
        headers=KEY_B)
    for source in (a_output, f"s3://{cloud.refs.bucket}/{a_output}", "s3://some-other-bucket/x.png",
                   "outputs/../x.png", "file:///etc/passwd"):
        status, body, _ = api(cloud, "POST", "/api/generate", {
            "template_id": f"{section}_latest", "custom_data": {"name": "x"}, "logo": source}, headers=KEY_B)
        assert status == 422, (source, body)
        assert body["error"]["code"] == "overlay_refused", (source, body)
    # The owner may use its own output as a logo, plain or as s3://.
    for source in (a_output, f"s3://{cloud.refs.bucket}/{a_output}"):
        status, body, _ = api(cloud, "POST", "/api/generate", {
            "template_id": f"{section}_latest", "custom_data": {"name": "x"}, "logo": source}, headers=KEY_A)
        assert status == 200, (source, body)


def test_add_images_cannot_crop_another_tenants_objects(cloud: Any, job_a: dict[str, Any]) -> None:
    a_output = job_a["results"][0]["key"]
    before = {o["Key"] for o in aws.client("s3").list_objects_v2(
        Bucket=cloud.refs.bucket, Prefix="outputs/").get("Contents", [])}
    for image in (a_output, {"s3Key": a_output}, f"s3://{cloud.refs.bucket}/{a_output}"):
        status, body, _ = api(cloud, "POST", "/api/batch/add-images", {"images": [image]}, headers=KEY_B)
        assert status == 422 and body["error"]["code"] == "invalid_image", (image, body)
        assert "not one of your objects" in body["error"]["message"]
    after = {o["Key"] for o in aws.client("s3").list_objects_v2(
        Bucket=cloud.refs.bucket, Prefix="outputs/").get("Contents", [])}
    assert after == before


def test_a_batch_id_of_another_tenant_is_taken_not_shown(cloud: Any, job_a: dict[str, Any]) -> None:
    batch_id = f"iso-batch-{uuid.uuid4().hex[:6]}"
    tenant_a = _tenant(cloud, KEY_A)
    photo = f"uploads/{tenant_a}/missing-{batch_id}.jpg"
    status, body, _ = api(cloud, "POST", "/api/batch/add-images", {"images": [photo], "batchId": batch_id},
                          headers=KEY_A)
    assert status == 202, body
    status, body, _ = api(cloud, "POST", "/api/batch/add-images", {
        "images": [f"uploads/{_tenant(cloud, KEY_B)}/x.jpg"], "batchId": batch_id}, headers=KEY_B)
    assert status == 409 and body["error"]["code"] == "batch_conflict"
    assert photo not in str(body)
