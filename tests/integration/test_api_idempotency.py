"""Idempotency-Key: a retried job-creating request answers with the same job, once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from posterflow import jobs
from tests.integration.helpers import api, upload_card_template


@pytest.fixture(scope="module")
def template_id(cloud: Any) -> str:
    return upload_card_template(cloud, "idem", "<b>{{ consumer_name }}</b>", name="Idem card")


def _bodies(template_id: str) -> dict[str, dict[str, Any]]:
    return {
        "/api/generate-batch": {"template_id": template_id, "items": [{"consumer_name": "A"}, {"consumer_name": "B"}]},
        "/api/generate-async": {"template_id": template_id, "custom_data": {"consumer_name": "A"}},
        "/api/templates/generate": {"template_id": template_id, "custom_data": {"consumer_name": "A"}},
        "/api/generate-bulk": {"bulkMethod": "csv", "csvData": "consumer_name\nA\n", "template_id": template_id},
        "/api/uploads": {"filename": "rows.csv", "template_id": template_id},
    }


@pytest.mark.parametrize("path", list(_bodies("t")))
def test_retry_with_the_same_key_returns_the_same_job(cloud: Any, template_id: str, path: str) -> None:
    body = _bodies(template_id)[path]
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    first_status, first, _ = api(cloud, "POST", path, body, headers=key)
    assert first_status in (201, 202), first
    again_status, again, _ = api(cloud, "POST", path, body, headers=key)
    assert again_status == first_status and again == first
    # No second job was made: the newest job is the one answered.
    newest, _ = jobs.list_jobs(limit=1)
    assert newest[0].job_id == first["job_id"]
    # Without the key, a repeat is a new job; with a new key too.
    _, other, _ = api(cloud, "POST", path, body)
    _, third, _ = api(cloud, "POST", path, body, headers={"Idempotency-Key": f"k-{uuid.uuid4().hex}"})
    assert len({first["job_id"], other["job_id"], third["job_id"]}) == 3


def test_same_key_with_another_body_is_422(cloud: Any, template_id: str) -> None:
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    body = _bodies(template_id)["/api/generate-batch"]
    status, first, _ = api(cloud, "POST", "/api/generate-batch", body, headers=key)
    assert status == 202, first
    changed = {**body, "items": [{"consumer_name": "Z"}]}
    status, err, _ = api(cloud, "POST", "/api/generate-batch", changed, headers=key)
    assert status == 422 and err["error"]["code"] == "idempotency_key_reused"
    # Keys are scoped by route: the same key on another route is another request.
    status, other, _ = api(cloud, "POST", "/api/generate-async", _bodies(template_id)["/api/generate-async"],
                           headers=key)
    assert status == 202 and other["job_id"] != first["job_id"]


def test_a_failed_request_leaves_the_key_usable(cloud: Any, template_id: str) -> None:
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    missing = {"template_id": "no-such-template_latest", "items": [{"consumer_name": "A"}]}
    status, _, _ = api(cloud, "POST", "/api/generate-batch", missing, headers=key)
    assert status == 404
    status, _, _ = api(cloud, "POST", "/api/generate-batch", missing, headers=key)
    assert status == 404


def test_bad_key_is_422(cloud: Any, template_id: str) -> None:
    status, body, _ = api(cloud, "POST", "/api/generate-async", _bodies(template_id)["/api/generate-async"],
                          headers={"Idempotency-Key": "x" * 300})
    assert status == 422 and body["error"]["code"] == "invalid_idempotency_key"


def test_concurrent_requests_each_see_their_own_idempotency_key(cloud: Any) -> None:
    """The route modules are Routers shared by the local cloud's API instances: each request
    must read its own headers, not those of another instance's request in flight."""
    from concurrent.futures import ThreadPoolExecutor

    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": f"idem-conc-{uuid.uuid4().hex[:6]}", "name": "c", "html_content": "<p>{{ n }}</p>",
        "width": 100, "height": 50, "format": "jpeg"})
    assert status == 201, body
    template_id = body["template_id"]

    def submit(i: int) -> tuple[int, str]:
        key = f"conc-{uuid.uuid4().hex}-{i}"
        status, answer, _ = api(cloud, "POST", "/api/generate-async",
                                {"template_id": template_id, "custom_data": {"n": i}},
                                headers={"Idempotency-Key": key})
        assert status == 202, answer
        again = api(cloud, "POST", "/api/generate-async", {"template_id": template_id, "custom_data": {"n": i}},
                    headers={"Idempotency-Key": key})
        assert again[0] == 202 and again[1]["job_id"] == answer["job_id"], (answer, again)
        return i, str(answer["job_id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(submit, range(24)))
    assert len({job_id for _, job_id in results}) == 24
