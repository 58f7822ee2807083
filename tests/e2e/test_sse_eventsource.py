"""Seed 001's Example 3 — its JavaScript ``EventSource`` client, unchanged but for the job id —
in headless Chromium against the local cloud (issue 17): one ``poster_completed`` per poster,
then ``job_completed``, after which the client closes its stream."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.integration.helpers import api

pytestmark = pytest.mark.browser

HTML = "<html><body style='margin:0;background:#fff'><b>{{ consumer_name }}</b></body></html>"
SEED_JOB_ID = "template_batch_x9y8z7w6v5u4"

# Seed 001, "Example 3: SSE Client (Real-time Progress)", verbatim.
SEED_001_EXAMPLE_3 = """
const eventSource = new EventSource('/api/templates/job/template_batch_x9y8z7w6v5u4/stream');

eventSource.addEventListener('poster_completed', (event) => {
  const data = JSON.parse(event.data);
  console.log(`Poster completed: ${data.entity_id} -> ${data.poster_url}`);
  updateProgressBar(++completedCount);
});

eventSource.addEventListener('job_completed', (event) => {
  const data = JSON.parse(event.data);
  console.log(`Job completed: ${data.success_count}/${data.total_count}`);
  eventSource.close();
  showCompletionMessage();
});

eventSource.addEventListener('log', (event) => {
  const data = JSON.parse(event.data);
  console.log(`[${data.level}] ${data.message}`);
});
"""

# What the seed's page around the snippet provides.
PAGE_GLOBALS = """
window.completedCount = 0;
window.progress = [];
window.completed = false;
window.updateProgressBar = (n) => { window.progress.push(n); };
window.showCompletionMessage = () => { window.completed = true; };
"""


def _batch(cloud: Any, n: int) -> dict[str, Any]:
    section = f"ssejs-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": "SSE", "html_content": HTML, "set_as_active": True,
        "width": 200, "height": 100, "format": "jpeg"})
    assert status == 201, body
    items = [{"consumer_name": f"Person {i}", "testimonial_id": f"t{i}"} for i in range(n)]
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {
        "template_id": f"{section}_latest", "items": items, "metadata": {"campaign": "sse"}})
    assert status == 202, body
    return dict(body)


def test_seed_001_eventsource_client_counts_every_poster_then_completes(cloud: Any, browser: Browser) -> None:
    n = 3
    job = _batch(cloud, n)
    context = browser.new_context()
    page = context.new_page()
    logs: list[str] = []
    errors: list[str] = []
    page.on("console", lambda msg: logs.append(msg.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        # A page of the API's own origin: the snippet's relative URL reaches the local gateway.
        page.goto(f"{cloud.gateway.rest_url}/health")
        page.add_script_tag(content=PAGE_GLOBALS)
        page.add_script_tag(content=SEED_001_EXAMPLE_3.replace(SEED_JOB_ID, job["job_id"]))
        page.wait_for_function("window.completed === true", timeout=90_000)
        for _ in range(50):  # console messages reach Playwright a moment after they are logged
            if any(line.startswith("Job completed: ") for line in logs):
                break
            page.wait_for_timeout(100)
        count = page.evaluate("window.completedCount")
        progress = page.evaluate("window.progress")
        ready_state = page.evaluate("eventSource.readyState")
    finally:
        context.close()
    assert not errors, errors
    posters = [line for line in logs if line.startswith("Poster completed: ")]
    assert count == n and progress == list(range(1, n + 1)), (count, progress, "\n".join(logs))
    assert sorted(line.split(" -> ")[0] for line in posters) == [f"Poster completed: t{i}" for i in range(n)]
    assert all(line.split(" -> ")[1].startswith("http") for line in posters), posters
    assert f"Job completed: {n}/{n}" in logs, logs
    assert ready_state == 2  # CLOSED: the seed's client closed its stream after job_completed
