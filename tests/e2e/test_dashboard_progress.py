"""The dashboard in headless Chromium against the local cloud (issue 7): start a batch and
watch the bar reach 100% over the WebSocket, download the results, cancel a running job,
filter the jobs list, see template previews."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.integration.helpers import api

pytestmark = pytest.mark.browser

HTML = "<html><body style='margin:0;background:#fff'><b style='font-size:30px'>{{ name }}</b></body></html>"


@pytest.fixture()
def template_id(cloud: Any) -> str:
    section = f"dash-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": "Dashboard", "html_content": HTML, "set_as_active": True,
        "width": 200, "height": 100, "format": "jpeg"})
    assert status == 201, body
    return str(body["template_id"])


def _start_batch(page: Page, cloud: Any, template_id: str, rows: int) -> str:
    page.goto(f"{cloud.gateway.rest_url}/")
    expect(page.locator(f"#batch-template option[value='{template_id}']")).to_have_count(1, timeout=30_000)
    page.select_option("#batch-template", template_id)
    page.fill("#batch-count", str(rows))
    page.select_option("#batch-format", "jpeg")
    page.fill("#batch-width", "200")
    page.fill("#batch-height", "100")
    page.click("#batch-start")
    expect(page.locator("#batch-message")).to_contain_text("Started job", timeout=30_000)
    job_id = page.locator("#job-id").inner_text()
    assert job_id and job_id in page.locator("#batch-message").inner_text()
    return job_id


def test_batch_progress_reaches_100_and_downloads(page: Page, cloud: Any, template_id: str, tmp_path: Path) -> None:
    job_id = _start_batch(page, cloud, template_id, 30)
    expect(page.locator("#job-live")).to_contain_text("live", timeout=30_000)
    expect(page.locator("#job-bar")).to_have_attribute("aria-valuenow", "100", timeout=180_000)
    expect(page.locator("#job-percent")).to_have_text("100%")
    expect(page.locator("#job-processed")).to_have_text("30 / 30")
    expect(page.locator("#job-status")).to_have_text("completed", timeout=120_000)
    expect(page.locator("#job-succeeded")).to_have_text("30")
    expect(page.locator("#job-eta")).to_have_text("done")
    # Thumbnails of the newest items came in through item_completed frames.
    thumbs = page.locator("#job-items li img")
    expect(thumbs.first).to_be_visible()
    assert page.locator("#job-items li").count() == 24
    assert thumbs.first.evaluate("img => img.complete && img.naturalWidth") == 200

    download = page.locator("#job-download")
    expect(download).to_have_attribute("aria-disabled", "false", timeout=60_000)
    with page.expect_download() as info:
        download.click()
    saved = tmp_path / "results.zip"
    info.value.save_as(saved)
    assert saved.read_bytes()[:2] == b"PK"
    expect(page.locator("#job-cancel")).to_be_disabled()
    expect(page.locator("#job-retry")).to_be_disabled()

    # The jobs list filters by status and shows this job as completed.
    page.select_option("#jobs-filter", "completed")
    expect(page.locator(f"#jobs-table tr[data-job='{job_id}']")).to_have_attribute("data-status", "completed")
    page.select_option("#jobs-filter", "cancelled")
    expect(page.locator(f"#jobs-table tr[data-job='{job_id}']")).to_have_count(0)
    page.select_option("#jobs-filter", "")
    shot = tmp_path / "dashboard-finished.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_cancel_a_running_job_from_the_ui(page: Page, cloud: Any, template_id: str, tmp_path: Path) -> None:
    job_id = _start_batch(page, cloud, template_id, 400)
    cancel = page.locator("#job-cancel")
    expect(cancel).to_be_enabled(timeout=30_000)
    cancel.click()
    expect(page.locator("#job-status")).to_have_text("cancelled", timeout=60_000)
    expect(cancel).to_be_disabled()
    status, job, _ = api(cloud, "GET", f"/api/jobs/{job_id}?limit=1")
    assert status == 200 and job["status"] == "cancelled"
    assert job["success_count"] < 400
    page.screenshot(path=str(tmp_path / "dashboard-cancelled.png"), full_page=True)


# The preview route answers 502 for image bodies today: Powertools' response validation
# (enable_validation=True with the ``Response[bytes]`` annotation) decodes the JPEG as UTF-8.
def test_template_gallery_shows_previews(page: Page, cloud: Any, template_id: str) -> None:
    page.goto(f"{cloud.gateway.rest_url}/")
    page.click("button.tab[data-tab='templates']")
    figure = page.locator(f"#gallery figure[data-template='{template_id}']")
    expect(figure).to_be_visible(timeout=30_000)
    expect(figure).to_contain_text("name")
    expect(figure.locator("img, .preview-missing")).to_have_count(1)
    page.wait_for_function(
        "f => f.querySelector('.preview-missing') || (f.querySelector('img').complete && "
        "f.querySelector('img').naturalWidth > 0)", arg=figure.element_handle(), timeout=60_000)
    assert figure.locator("img").evaluate("img => img.naturalWidth") == 200
