"""The dashboard's "Template stats" view in headless Chromium against the local cloud: a batch
with a failure shows up as its section's and version's row with the job's own figures; a
section filter narrows the table; a bad date shows the API's 422 message."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.integration.helpers import api, wait_for

pytestmark = pytest.mark.browser

HTML = "<div style='font:18px sans-serif'>{{ name }}: {{ message }}</div>"


@pytest.fixture(scope="module")
def counted(cloud: Any) -> tuple[str, dict[str, Any]]:
    """(a fresh section, its stats) after a batch of 4 rows, one failing, has been counted."""
    # The page lists the default tenant's first 100 sections by name: a leading digit keeps this
    # one among them however many sections other tests of the session made.
    section = f"0dstats-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": "Stats view", "format": "jpeg", "width": 200, "height": 100,
        "html_content": HTML})
    assert status == 201, body
    items = [{"name": f"P{i}", "message": "hi"} for i in range(3)] + [{"name": "no message"}]
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {"template_id": f"{section}_latest", "items": items})
    assert status == 202, body

    def stats() -> Any:
        _, b, _ = api(cloud, "GET", f"/api/stats/templates?section={section}")
        return b["sections"][0] if b["sections"] and b["sections"][0]["jobs"] == 1 else None

    return section, dict(wait_for(stats, timeout=120, interval=0.3, what="the batch to be counted"))


def _ms(value: float) -> str:
    return f"{round(value)} ms" if value < 10000 else f"{value / 1000:.1f} s"


def test_stats_view_shows_the_section_and_version_with_the_jobs_figures(
        cloud: Any, page: Page, counted: tuple[str, dict[str, Any]]) -> None:
    section, found = counted
    page.goto(f"{cloud.gateway.rest_url}/")
    page.click(".tab[data-tab='stats']")
    expect(page.locator("#tab-stats")).to_be_visible()
    row = page.locator(f"#stats-table tr.stats-section[data-section='{section}']")
    expect(row).to_have_count(1, timeout=30_000)
    g = found["generation_ms"]
    for field, text in (("jobs", "1"), ("items", "4"), ("succeeded", "3"), ("failed", "1"),
                        ("min", _ms(g["min"])), ("max", _ms(g["max"])), ("avg", _ms(g["avg"])),
                        ("p50", _ms(g["p50"])), ("job", _ms(found["avg_job_duration_ms"]))):
        expect(row.locator(f"td[data-field='{field}']")).to_have_text(text)
    version = page.locator(f"#stats-table tr.stats-version[data-section='{section}'][data-version='1']")
    expect(version.locator("td[data-field='items']")).to_have_text("4")
    expect(page.locator("#stats-crops tr.stats-crops")).to_have_count(1)

    # One section only.
    page.fill("#stats-section", section)
    page.click("#stats-refresh")
    expect(page.locator("#stats-table tr.stats-section")).to_have_count(1)
    expect(page.locator("#stats-table tr.stats-section")).to_have_attribute("data-section", section)


def test_a_bad_date_shows_the_apis_message(cloud: Any, page: Page) -> None:
    page.goto(f"{cloud.gateway.rest_url}/")
    page.click(".tab[data-tab='stats']")
    expect(page.locator("#stats-message")).to_have_text("", timeout=30_000)
    page.fill("#stats-since", "2026-13-01")
    page.click("#stats-refresh")
    expect(page.locator("#stats-message")).to_contain_text("not a calendar date")
    expect(page.locator("#stats-message")).to_have_class("message error")
