"""The dashboard's job view in headless Chromium for a ``merge_pdf`` batch answered inline: the
merged PDF's link and the entity the job is at."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.integration.helpers import api

pytestmark = pytest.mark.browser

HTML = "<html><body style='margin:0;background:#fff'><h1>Dear {{ name }}</h1></body></html>"


def test_job_view_links_the_merged_pdf(cloud: Any, page: Page) -> None:
    section = f"dash-mail-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": "Mailer", "html_content": HTML, "format": "pdf", "width": 384, "height": 288})
    assert status == 201, body
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {
        "template_id": f"{section}_latest", "merge_pdf": True, "mode": "auto",
        "items": [{"recipient_id": "r1", "name": "Ada"}, {"recipient_id": "r2", "name": "Grace"}]})
    assert status == 200 and body["merged_pdf_url"], body

    page.goto(f"{cloud.gateway.rest_url}/#{body['job_id']}")
    link = page.locator("#job-merged")
    expect(link).to_be_visible(timeout=30_000)
    href = link.get_attribute("href") or ""
    assert f"/{body['job_id']}/merged-001.pdf" in href
    assert page.request.get(href).body()[:5] == b"%PDF-"
    expect(page.locator("#job-current")).to_have_text("r2")
