"""The dashboard as the deployed stack serves it (``GET /dashboard`` from the API, its strict
CSP in force), opened with an API key typed in: it lists the caller's jobs through the API and
no one else's, keeps the key in sessionStorage only, and breaks no CSP rule on the way."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.integration.helpers import api

pytestmark = pytest.mark.browser

HTML = "<html><body style='margin:0;background:#fff'><b>{{ name }}</b></body></html>"


@pytest.fixture()
def page(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda exc: problems.append(str(exc)))
    # A CSP violation is reported on the console ("Refused to ...").
    opened.on("console", lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None)
    yield opened, problems
    context.close()


def _job_of(cloud: Any, key: str) -> str:
    """A one-poster batch of a template of the key's own (tenant = the key)."""
    headers = {"x-api-key": key}
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": f"key-{uuid.uuid4().hex[:6]}", "name": "Keyed", "html_content": HTML, "set_as_active": True,
        "width": 120, "height": 60, "format": "png"}, headers=headers)
    assert status == 201, body
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {
        "template_id": body["template_id"], "items": [{"name": "Ada"}]}, headers=headers)
    assert status in (200, 201, 202), body
    return str(body["job_id"])


def test_the_page_lists_the_callers_jobs_with_the_typed_key(page: tuple[Page, list[str]], cloud: Any) -> None:
    opened, problems = page
    mine, theirs = f"dash-key-{uuid.uuid4().hex[:8]}", f"dash-other-{uuid.uuid4().hex[:8]}"
    my_job, their_job = _job_of(cloud, mine), _job_of(cloud, theirs)

    opened.goto(f"{cloud.gateway.rest_url}/dashboard")
    opened.fill("#api-key", mine)
    opened.click("#api-key-use")
    expect(opened.locator("#api-key-status")).to_have_text("key set for this tab")
    expect(opened.locator(f"#jobs-table tr[data-job='{my_job}']")).to_have_count(1, timeout=30_000)
    expect(opened.locator(f"#jobs-table tr[data-job='{their_job}']")).to_have_count(0)

    # The key lives in this tab's sessionStorage, nowhere else.
    assert opened.evaluate("sessionStorage.getItem('posterflow.apiKey')") == mine
    stored = opened.evaluate("JSON.stringify(Object.assign({}, localStorage))")
    assert mine not in stored

    # The job opens (its detail comes from the API with the key) and finishes.
    opened.click(f"#jobs-table tr[data-job='{my_job}']")
    expect(opened.locator("#job-id")).to_have_text(my_job)
    expect(opened.locator("#job-status")).to_have_text("completed", timeout=60_000)

    # Another key sees the other tenant's job instead.
    opened.fill("#api-key", theirs)
    opened.click("#api-key-use")
    expect(opened.locator(f"#jobs-table tr[data-job='{their_job}']")).to_have_count(1, timeout=30_000)
    expect(opened.locator(f"#jobs-table tr[data-job='{my_job}']")).to_have_count(0)
    assert not problems, problems
