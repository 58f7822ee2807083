"""GET /api/jobs/{id}/logs (newest first, level filter, cursors) and the ``status`` filter of a
job's results (GET /api/jobs/{id}, GET /api/templates/job/{id}), through the REST API."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.helpers import api, wait_for

HTML = "<div style='font:18px sans-serif'>{{ consumer_name }}: {{ consumer_message }}</div>"
TOTAL = 12
BAD = (2, 5, 9)  # rows without the required placeholder consumer_message
OTHER_TENANT = {"x-api-key": "job-logs-other-tenant"}


def _batch(cloud: Any, template_id: str, n: int, bad: tuple[int, ...]) -> str:
    items: list[dict[str, Any]] = [
        {"consumer_name": f"P{i}", "consumer_message": "hi", "testimonial_id": f"t{i}"} for i in range(n)]
    for i in bad:
        del items[i]["consumer_message"]
    status, body, _ = api(cloud, "POST", "/api/generate-batch",
                          {"template_id": template_id, "items": items, "format": "jpeg"})
    assert status == 202, body
    job_id: str = body["job_id"]

    def done() -> Any:
        _, b, _ = api(cloud, "GET", f"/api/jobs/{job_id}")
        return b if b["status"] in ("completed", "completed_with_errors", "failed") else None

    wait_for(done, timeout=120, interval=0.5, what=f"job {job_id} to finish")
    return job_id


@pytest.fixture(scope="module")
def jobs_(cloud: Any) -> tuple[str, str]:
    """(a batch of TOTAL posters with BAD failing, a second small job of the same tenant)."""
    section = f"joblogs-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": "Job logs card", "format": "jpeg", "width": 200, "height": 100,
        "html_content": HTML})
    assert status == 201, body
    template_id = f"{section}_latest"
    return _batch(cloud, template_id, TOTAL, BAD), _batch(cloud, template_id, 2, (1,))


def _get(cloud: Any, path: str, **headers: str) -> tuple[int, Any]:
    status, body, _ = api(cloud, "GET", path, headers=headers or None)
    return status, body


def _all_logs(cloud: Any, job_id: str, query: str = "", limit: int = 1000) -> list[dict[str, Any]]:
    logs: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        path = f"/api/jobs/{job_id}/logs?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")
        status, body = _get(cloud, path)
        assert status == 200, body
        assert body["job_id"] == job_id and set(body) == {"job_id", "logs", "next"}
        assert len(body["logs"]) <= limit
        logs.extend(body["logs"])
        pages += 1
        cursor = body["next"]
        if cursor is None:
            return logs
        assert pages < 1000


def test_error_logs_name_each_failed_item_with_its_reason(cloud: Any, jobs_: tuple[str, str]) -> None:
    job_id, _ = jobs_
    errors = _all_logs(cloud, job_id, "&level=ERROR")
    assert errors and all(line["level"] == "ERROR" for line in errors)
    assert all(set(line) == {"timestamp", "level", "message", "details"} for line in errors)
    named: dict[int, str] = {}
    for line in errors:
        for failed in (line["details"] or {}).get("items", []):
            named[failed["item_id"]] = failed["error_code"]
            assert "consumer_message" in failed["error"]
            assert str(failed["item_id"]) in line["message"]
    assert named == dict.fromkeys(BAD, "missing_placeholders")
    # The level is case-insensitive; without one every level is listed, newest first.
    assert _all_logs(cloud, job_id, "&level=error") == errors
    everything = _all_logs(cloud, job_id)
    assert {line["level"] for line in everything} >= {"INFO", "ERROR"}
    stamps = [line["timestamp"] for line in everything]
    assert stamps == sorted(stamps, reverse=True)
    assert [line for line in everything if line["level"] == "ERROR"] == errors
    assert _all_logs(cloud, job_id, "&level=DEBUG") == []


def test_logs_paginate_newest_first(cloud: Any, jobs_: tuple[str, str]) -> None:
    job_id, _ = jobs_
    everything = _all_logs(cloud, job_id)
    assert len(everything) >= 2
    assert _all_logs(cloud, job_id, limit=1) == everything
    status, first = _get(cloud, f"/api/jobs/{job_id}/logs?limit=1")
    assert status == 200 and first["logs"] == everything[:1] and first["next"]
    # Default page size: 100.
    status, body = _get(cloud, f"/api/jobs/{job_id}/logs")
    assert status == 200 and body["logs"] == everything[:100]


def _results(cloud: Any, route: str, query: str, limit: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        status, body = _get(cloud, f"{route}?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200, body
        assert len(body["results"]) <= limit
        out.extend(body["results"])
        cursor = body["next"]
        if cursor is None:
            return out


@pytest.mark.parametrize("route", ["/api/jobs/{}", "/api/templates/job/{}"])
def test_results_filtered_by_status_and_paginated(cloud: Any, jobs_: tuple[str, str], route: str) -> None:
    job_id, _ = jobs_
    path = route.format(job_id)
    failed = _results(cloud, path, "&status=failed", 1000)
    assert [r["item_id"] for r in failed] == list(BAD)
    assert all(r["status"] == "failed" and r["error_code"] == "missing_placeholders" for r in failed)
    assert _results(cloud, path, "&status=failed", 2) == failed
    status, page = _get(cloud, f"{path}?status=failed&limit=2")
    assert status == 200 and len(page["results"]) == 2 and page["next"]
    assert page["failure_count"] == len(BAD) and page["total_items"] == TOTAL  # the job's fields stay
    good = _results(cloud, path, "&status=succeeded", 4)
    assert [r["item_id"] for r in good] == [i for i in range(TOTAL) if i not in BAD]
    assert all(r["error_code"] is None for r in good)
    for other in ("skipped", "cancelled", "pending"):
        assert _results(cloud, path, f"&status={other}", 5) == []
    assert len(_results(cloud, path, "", 5)) == TOTAL


@pytest.mark.parametrize("route", ["/api/jobs/{}", "/api/templates/job/{}", "/api/jobs/{}/logs"])
def test_unknown_and_foreign_jobs_are_404(cloud: Any, jobs_: tuple[str, str], route: str) -> None:
    status, body = _get(cloud, route.format("doesnotexist"))
    assert status == 404 and body["error"]["code"] == "job_not_found"
    status, body = _get(cloud, route.format(jobs_[0]), **OTHER_TENANT)
    assert status == 404 and body["error"]["code"] == "job_not_found"


def test_bad_level_and_status_name_the_allowed_values(cloud: Any, jobs_: tuple[str, str]) -> None:
    job_id, _ = jobs_
    status, body = _get(cloud, f"/api/jobs/{job_id}/logs?level=LOUD")
    assert status == 422 and body["error"]["code"] == "invalid_level"
    assert body["error"]["details"]["allowed"] == ["DEBUG", "INFO", "WARNING", "ERROR"]
    for route in (f"/api/jobs/{job_id}", f"/api/templates/job/{job_id}"):
        status, body = _get(cloud, f"{route}?status=broken")
        assert status == 422 and body["error"]["code"] == "invalid_status"
        assert body["error"]["details"]["allowed"] == ["failed", "succeeded", "skipped", "cancelled", "pending"]


@pytest.mark.parametrize("limit", [0, 1001, -5])
def test_limit_out_of_range(cloud: Any, jobs_: tuple[str, str], limit: int) -> None:
    job_id, _ = jobs_
    for path in (f"/api/jobs/{job_id}/logs", f"/api/jobs/{job_id}", f"/api/templates/job/{job_id}"):
        status, body = _get(cloud, f"{path}?limit={limit}")
        assert status == 422 and body["error"]["code"] == "invalid_limit", (path, body)


def _cursor(cloud: Any, path: str) -> str:
    status, body = _get(cloud, path)
    assert status == 200 and body["next"], body
    return str(body["next"])


def test_cursors_belong_to_one_job_and_one_filter(cloud: Any, jobs_: tuple[str, str]) -> None:
    job_id, other_job = jobs_
    failed = _cursor(cloud, f"/api/jobs/{job_id}?status=failed&limit=1")
    unfiltered = _cursor(cloud, f"/api/jobs/{job_id}?limit=1")
    refused = [
        f"/api/jobs/{job_id}?status=succeeded&cursor={failed}",
        f"/api/jobs/{job_id}?cursor={failed}",
        f"/api/templates/job/{job_id}?status=failed&cursor={unfiltered}",
        f"/api/jobs/{other_job}?status=failed&cursor={failed}",
        f"/api/jobs/{job_id}?cursor=not-a-cursor",
    ]
    info = _cursor(cloud, f"/api/jobs/{job_id}/logs?level=INFO&limit=1")
    all_logs = _cursor(cloud, f"/api/jobs/{job_id}/logs?limit=1")
    refused += [
        f"/api/jobs/{job_id}/logs?cursor={info}",
        f"/api/jobs/{job_id}/logs?level=ERROR&cursor={info}",
        f"/api/jobs/{job_id}/logs?level=INFO&cursor={all_logs}",
        f"/api/jobs/{other_job}/logs?cursor={all_logs}",
        f"/api/jobs/{job_id}/logs?cursor={failed}",
        f"/api/jobs/{job_id}?cursor={all_logs}",
        f"/api/jobs/{job_id}/logs?cursor=not-a-cursor",
    ]
    for path in refused:
        status, body = _get(cloud, path)
        assert status == 422 and body["error"]["code"] == "invalid_cursor", (path, body)
    # The same cursor goes on in its own listing.
    status, body = _get(cloud, f"/api/templates/job/{job_id}?status=failed&limit=1&cursor={failed}")
    assert status == 200 and [r["item_id"] for r in body["results"]] == [BAD[1]]


def _error_items(cloud: Any, job_id: str) -> dict[int, str]:
    named: dict[int, str] = {}
    for line in _all_logs(cloud, job_id, "&level=ERROR"):
        for failed in (line["details"] or {}).get("items", []):
            assert str(failed["item_id"]) in line["message"]
            named[failed["item_id"]] = failed["error_code"]
    return named


def test_bulk_rows_failed_before_rendering_are_logged(cloud: Any, jobs_: tuple[str, str]) -> None:
    html = f"<p>{{{{ name }}}} {{{{ title }}}} {uuid.uuid4().hex}</p>"
    status, body, _ = api(cloud, "POST", "/api/generate-bulk", {
        "bulkMethod": "csv", "csvData": "name,title\nAna,CTO\nBen\nCy,CEO,extra\n", "csvTemplate": html,
        "format": "jpeg", "width": 200, "height": 100})
    assert status == 202 and body["failed_items"] == 2, body
    job_id = body["job_id"]
    named = _error_items(cloud, job_id)
    assert set(named) == {1, 2} and all(named.values()), named
    status, page = _get(cloud, f"/api/jobs/{job_id}?status=failed")
    assert status == 200 and {(r["item_id"], r["error_code"]) for r in page["results"]} == set(named.items())


def test_stall_sweep_logs_the_items_it_fails(cloud: Any) -> None:
    import time

    from posterflow import jobs

    job = jobs.create_job("poster", 4)
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=i) for i in range(3)])  # item 3 never written
    jobs.finish_item(job.job_id, 0, status="succeeded")
    assert jobs.sweep_stalled(500, now=time.time() + 1000, job_ids=[job.job_id]) == [job.job_id]
    assert _error_items(cloud, job.job_id) == dict.fromkeys((1, 2, 3), "stalled")
