"""A 1,000-poster batch end to end, and exactly-once counting under duplicate delivery."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from posterflow import aws, jobs
from tests.integration.helpers import api, wait_for

TINY = "<div style='font:14px sans-serif'>{{ name }} #{{ n }}</div>"


@pytest.fixture(scope="module")
def template_id(cloud: Any) -> str:
    section = f"tiny-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": "Tiny", "format": "jpeg", "width": 200, "height": 100, "html_content": TINY})
    assert status == 201, body
    return f"{section}_latest"


def _final(job_id: str, timeout: float) -> jobs.Job:
    def done() -> jobs.Job | None:
        job = jobs.get_job(job_id)
        return job if job.is_final else None

    try:
        found: jobs.Job = wait_for(done, timeout=timeout, interval=0.5, what=f"job {job_id} to finish")
    except AssertionError as exc:
        job = jobs.get_job(job_id)
        raise AssertionError(f"{exc}: {job.status}, {job.processed}/{job.total} processed") from None
    return found


def _outputs(cloud: Any, job_id: str) -> int:
    pages = aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=cloud.refs.bucket,
                                                                        Prefix=f"outputs/default/{job_id}/")
    return sum(page.get("KeyCount", 0) for page in pages)


def test_thousand_item_batch_completes_with_every_output(cloud: Any, template_id: str) -> None:
    items = [{"name": f"Person {i}", "n": str(i), "entity_id": f"e{i}"} for i in range(1000)]
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {"template_id": template_id, "items": items})
    assert status == 202 and body["total_items"] == 1000, body
    # A ceiling for a loaded, shared machine, not a speed assertion.
    job = _final(body["job_id"], timeout=400)
    assert (job.status, job.total, job.processed, job.succeeded, job.failed) == ("completed", 1000, 1000, 1000, 0)
    assert _outputs(cloud, job.job_id) == 1000
    status, view, _ = api(cloud, "GET", f"/api/templates/job/{job.job_id}")
    assert status == 200 and len(view["results"]) == 1000
    assert {r["entity_id"] for r in view["results"]} == {f"e{i}" for i in range(1000)}
    # Over the direct-submit size, the API handed the batch to the splitter as a manifest.
    assert any("handed to the splitter" in entry.message for entry in jobs.list_logs(job.job_id)[0])


def _queue_idle(url: str) -> bool:
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return all(v == "0" for v in attrs["Attributes"].values())


def test_a_message_delivered_twice_counts_once(cloud: Any, template_id: str) -> None:
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {
        "template_id": template_id, "items": [{"name": f"P{i}", "n": str(i)} for i in range(3)]})
    assert status == 202, body
    job_id = body["job_id"]
    render = cloud.runtime.get(cloud.spec.function("render").name)
    queue = cloud.refs.queue_urls["render"]
    messages = [{"job_id": job_id, "item_id": item.item_id, "spec": item.input} for item in jobs.iter_items(job_id)]
    sqs = aws.client("sqs")

    def duplicate() -> None:
        for m in messages:
            sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(m, separators=(",", ":")))

    duplicate()  # racing the originals
    job = _final(job_id, timeout=60)
    before = render.invocations
    duplicate()  # after the items landed
    wait_for(lambda: render.invocations > before and _queue_idle(queue), timeout=30, what="duplicates consumed")
    job = jobs.get_job(job_id)
    assert (job.status, job.total, job.processed, job.succeeded, job.failed) == ("completed", 3, 3, 3, 0)
    assert _outputs(cloud, job_id) == 3

