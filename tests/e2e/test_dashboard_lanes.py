"""The dashboard's queues card and batch priority in headless Chromium against the local cloud:
each work queue's lanes are listed with the API's numbers, and a batch started with priority 1
is an urgent job."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.integration.helpers import api, wait_for

pytestmark = pytest.mark.browser


def test_queues_card_lists_each_lane(cloud: Any, page: Page) -> None:
    page.goto(f"{cloud.gateway.rest_url}/")
    for work in ("render", "crop"):
        for lane in ("urgent", "normal"):
            expect(page.locator(f"#queues-table tr[data-queue='{work}'][data-lane='{lane}']")).to_have_count(
                1, timeout=30_000)
    expect(page.locator("#queues-table tr[data-queue='split']")).to_have_count(1)
    _, stats, _ = api(cloud, "GET", "/api/batch/queue-stats")
    dlq = stats["queues"]["render"]["lanes"]["urgent"]["dlq"]
    expect(page.locator("#queues-table tr[data-queue='render'][data-lane='urgent'] td[data-field='dlq']")).to_have_text(
        str(dlq))


def test_a_batch_started_with_priority_one_is_urgent(cloud: Any, page: Page) -> None:
    section = f"dlane-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": "Lanes", "html_content": "<b>{{ name }}</b>", "set_as_active": True,
        "width": 200, "height": 100, "format": "jpeg"})
    assert status == 201, body
    template_id = str(body["template_id"])
    page.goto(f"{cloud.gateway.rest_url}/")
    expect(page.locator(f"#batch-template option[value='{template_id}']")).to_have_count(1, timeout=30_000)
    page.select_option("#batch-template", template_id)
    page.fill("#batch-count", "3")
    page.select_option("#batch-priority", "1")
    page.click("#batch-start")
    expect(page.locator("#batch-message")).to_contain_text("Started job", timeout=30_000)
    job_id = page.locator("#job-id").inner_text()
    _, job, _ = api(cloud, "GET", f"/api/jobs/{job_id}")
    assert (job["priority"], job["lane"]) == (1, "urgent")
    wait_for(lambda: api(cloud, "GET", f"/api/jobs/{job_id}")[1]["status"] == "completed", timeout=60,
             what="the urgent batch to complete")
