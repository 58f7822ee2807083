"""``mode`` of ``POST /api/generate-batch`` on the local cloud: small batches answered inline (200
with results), ``sync`` above ``POSTERFLOW_SYNC_BATCH_MAX`` refused, ``auto`` above it async, an
inline batch past its deadline answered 202 and still completed with every item counted once;
and progress frames naming the entity the job is at."""

from __future__ import annotations

import io
import json
import time
import uuid
from typing import Any

import pytest
from PIL import Image
from websockets.sync.client import connect

from posterflow import jobs
from posterflow import resources as r
from tests.events import load_event
from tests.integration.helpers import api, fetch, wait_for

HTML = "<html><body style='margin:0;background:#fff'><b>{{ name }}</b></body></html>"
FINAL = {"completed", "completed_with_errors", "failed", "cancelled"}


@pytest.fixture(scope="module")
def template(cloud: Any) -> str:
    section = f"modes-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": "Modes", "html_content": HTML, "format": "jpeg", "width": 200, "height": 100})
    assert status == 201, body
    return f"{section}_latest"


def _items(n: int, prefix: str = "m") -> list[dict[str, Any]]:
    return [{"entity_id": f"{prefix}{i}", "name": f"Name {i}"} for i in range(n)]


def _finished(cloud: Any, job_id: str) -> dict[str, Any]:
    def done() -> Any:
        _, body, _ = api(cloud, "GET", f"/api/jobs/{job_id}")
        return body if body["status"] in FINAL else None

    return dict(wait_for(done, timeout=120, interval=0.3, what=f"job {job_id} to finish"))


def test_auto_answers_a_small_batch_inline_with_results(cloud: Any, template: str) -> None:
    items = [*_items(3), {"entity_id": "m-bad"}]  # one row misses its placeholder
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {"template_id": template, "items": items,
                                                                 "mode": "auto"})
    assert status == 200, body
    assert body["mode"] == "auto" and body["inline"] is True and body["job_id"]
    assert body["processed_items"] == 4 and body["success_count"] == 3 and body["failure_count"] == 1
    assert body["archive_url"], body  # the answer waited for finalize's archive
    results = {r["entity_id"]: r for r in body["results"]}
    assert set(results) == {"m0", "m1", "m2", "m-bad"}
    for entity in ("m0", "m1", "m2"):
        assert results[entity]["status"] == "completed"
        assert Image.open(io.BytesIO(fetch(results[entity]["url"]))).size == (200, 100)
    assert results["m-bad"]["status"] == "failed" and results["m-bad"]["error_code"] == "missing_placeholders"
    # An ordinary job: the status route shows the same counts, and it finalizes as ever.
    job = _finished(cloud, body["job_id"])
    assert (job["success_count"], job["failure_count"], job["processed_items"]) == (3, 1, 4)
    assert job["archive_url"]


def test_sync_above_the_limit_is_refused_naming_it(cloud: Any, template: str) -> None:
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {"template_id": template, "items": _items(26),
                                                                 "mode": "sync"})
    assert status == 422, body
    error = body["error"]
    assert error["code"] == "sync_batch_too_large" and error["details"]["limit"] == 25
    assert "25" in error["message"] and "POSTERFLOW_SYNC_BATCH_MAX" in error["message"]


def test_auto_above_the_limit_goes_async(cloud: Any, template: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTERFLOW_SYNC_BATCH_MAX", "2")  # the API function reads it per request
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {"template_id": template, "items": _items(3),
                                                                 "mode": "auto"})
    assert status == 202, body
    assert body["mode"] == "async" and "results" not in body
    job = _finished(cloud, body["job_id"])
    assert job["success_count"] == 3


def test_unknown_mode_is_a_validation_error(cloud: Any, template: str) -> None:
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {"template_id": template, "items": _items(1),
                                                                 "mode": "later"})
    assert status == 422 and body["error"]["code"] == "validation_error", body


def test_inline_batch_past_its_deadline_answers_202_and_completes_once(
        cloud: Any, template: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # No time at all: the API answers at once with the job, queues every item still pending,
    # and the inline renders already started finish too; each item is counted once.
    monkeypatch.setenv("POSTERFLOW_SYNC_BATCH_DEADLINE_S", "0")
    started = time.monotonic()
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {"template_id": template, "items": _items(7, "d"),
                                                                 "mode": "sync"})
    answered = time.monotonic() - started
    assert status == 202, body
    assert body["inline"] is False and body["job_id"] and body["status_endpoint"]
    assert 0 < body["queued"] <= 7 and answered < 10
    job = _finished(cloud, body["job_id"])
    assert job["status"] == "completed"
    assert (job["total_items"], job["processed_items"], job["success_count"], job["failure_count"]) == (7, 7, 7, 0)
    assert sorted(r["entity_id"] for r in job["results"]) == [f"d{i}" for i in range(7)]
    assert all(r["status"] == "completed" and r["url"] for r in job["results"])
    # Let any inline render still in flight land: the counts must not move.
    time.sleep(1.5)
    _, again, _ = api(cloud, "GET", f"/api/jobs/{body['job_id']}")
    assert (again["processed_items"], again["success_count"]) == (7, 7)


def test_progress_frames_carry_the_current_entity(cloud: Any, template: str) -> None:
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {"template_id": template, "items": _items(4, "p")})
    assert status == 202, body
    frames: list[dict[str, Any]] = []
    with connect(body["websocket_url"]) as ws:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (frames and frames[-1]["event"] in ("job_completed", "job_failed")):
            try:
                frames.append(json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic()))))
            except TimeoutError:
                break
    progress = [f for f in frames if f["event"] == "progress"]
    assert progress, [f["event"] for f in frames]
    assert all("current_entity" in f for f in progress)
    named = [f["current_entity"] for f in progress if f["current_entity"] is not None]
    assert named and set(named) <= {"p0", "p1", "p2", "p3"}
    # The entity named is one of the items that landed by then (announced in item frames).
    landed = [i["entity_id"] for f in frames if f["event"] == "item_completed" for i in f["items"]]
    assert named[-1] in landed


def test_render_inline_event_records_its_items_once(cloud: Any, template: str, aws_stack: r.ResourceRefs) -> None:
    # The render function's inline entry point (events/render/direct-inline.json), as the API
    # calls it: it records the chunk's outcomes itself; the same chunk again counts nothing.
    job = jobs.create_job("poster", total=2)
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=i, entity_id=f"r{i}") for i in range(2)])
    event = load_event("render/direct-inline", job_id=job.job_id, template_id=template)
    name = r.stack_spec().function("render").name
    for _ in range(2):
        result = cloud.runtime.invoke(name, event)
        assert not result.failed and result.payload == {"ok": True, "unrecorded": []}, result
        after = jobs.get_job(job.job_id)
        assert (after.processed, after.succeeded) == (2, 2)
    outputs = {i.entity_id: i.output_key for i in jobs.iter_items(job.job_id)}
    assert set(outputs) == {"r0", "r1"} and all(outputs.values())
