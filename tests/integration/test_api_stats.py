"""GET /api/stats/templates and /api/stats/crops through the REST API on the local cloud: the
write-time aggregates match the job's own results exactly, do not move under redelivery, a
finalize re-run or a retry round, and are the calling tenant's only."""

from __future__ import annotations

import json
import math
import random
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from posterflow import aws, jobs
from posterflow.jobs import stats
from tests import photos
from tests.events import load_event
from tests.integration.helpers import api, wait_for

HTML = "<div style='font:18px sans-serif'>{{ consumer_name }}: {{ consumer_message }}</div>"
TOTAL = 10
BAD = (1, 4, 8)  # rows without the placeholder consumer_message: failed items
TENANT = {"x-api-key": f"stats-{uuid.uuid4().hex[:8]}"}
OTHER = {"x-api-key": f"stats-other-{uuid.uuid4().hex[:8]}"}


def _get(cloud: Any, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    status, body, _ = api(cloud, "GET", path, headers=headers or TENANT)
    return status, body


def _finished(cloud: Any, job_id: str, timeout: float = 120) -> dict[str, Any]:
    def done() -> Any:
        _, b = _get(cloud, f"/api/jobs/{job_id}")
        return b if b["status"] in ("completed", "completed_with_errors", "failed", "cancelled") else None

    return dict(wait_for(done, timeout=timeout, interval=0.3, what=f"job {job_id} to finish"))


def _iso(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _ms(job: dict[str, Any]) -> int:
    return round((_iso(job["completed_at"]) - _iso(job["started_at"])).total_seconds() * 1000)


def _section_stats(cloud: Any, section: str, jobs_expected: int) -> dict[str, Any]:
    """The section's stats once its jobs are counted (the count lands just after the status)."""
    def counted() -> Any:
        status, body = _get(cloud, f"/api/stats/templates?section={section}")
        assert status == 200, body
        found = body["sections"]
        return found[0] if found and found[0]["jobs"] >= jobs_expected else None

    return dict(wait_for(counted, timeout=30, interval=0.2, what=f"stats of {section}"))


@pytest.fixture(scope="module")
def poster_job(cloud: Any) -> tuple[str, dict[str, Any]]:
    """(section, the finished job's status with results): TOTAL rows, BAD of them failing."""
    section = f"stats-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": "Stats card", "format": "jpeg", "width": 200, "height": 100,
        "html_content": HTML}, headers=TENANT)
    assert status == 201, body
    items: list[dict[str, Any]] = [{"consumer_name": f"P{i}", "consumer_message": "hi", "testimonial_id": f"t{i}"}
                                   for i in range(TOTAL)]
    for i in BAD:
        del items[i]["consumer_message"]
    status, body, _ = api(cloud, "POST", "/api/generate-batch",
                          {"template_id": f"{section}_latest", "items": items}, headers=TENANT)
    assert status == 202, body
    return section, _finished(cloud, body["job_id"])


def _expected(job: dict[str, Any]) -> dict[str, Any]:
    results = job["results"]
    times = [r["generation_time_ms"] for r in results if r["status"] == "completed"]
    return {"jobs": 1, "items": len(results), "succeeded": len(times),
            "failed": sum(r["status"] == "failed" for r in results),
            "avg": round(sum(times) / len(times), 2), "min": min(times), "max": max(times), "times": times,
            "avg_job_duration_ms": float(_ms(job))}


def _nearest_rank(values: list[int], p: float) -> int:
    return sorted(values)[max(1, math.ceil(p * len(values))) - 1]


def _assert_matches(found: dict[str, Any], want: dict[str, Any]) -> None:
    assert {k: found[k] for k in ("jobs", "items", "succeeded", "failed")} == {
        k: want[k] for k in ("jobs", "items", "succeeded", "failed")}
    g = found["generation_ms"]
    assert (g["avg"], g["min"], g["max"]) == (want["avg"], want["min"], want["max"])
    for p, name in ((0.5, "p50"), (0.95, "p95")):
        true = _nearest_rank(want["times"], p)
        assert want["min"] <= g[name] <= want["max"]
        assert true / stats.RATIO <= g[name] <= true * stats.RATIO, (name, g[name], true)
    assert found["avg_job_duration_ms"] == want["avg_job_duration_ms"]


def test_stats_of_a_batch_with_failures_match_its_results_exactly(cloud: Any,
                                                                  poster_job: tuple[str, dict[str, Any]]) -> None:
    section, job = poster_job
    assert job["status"] == "completed_with_errors" and job["failure_count"] == len(BAD)
    want = _expected(job)
    assert want["succeeded"] == TOTAL - len(BAD) and want["items"] == TOTAL
    found = _section_stats(cloud, section, 1)
    assert set(found) == {"section", "jobs", "items", "succeeded", "failed", "generation_ms",
                          "avg_job_duration_ms", "versions"}
    assert set(found["generation_ms"]) == {"avg", "min", "max", "p50", "p95"}
    _assert_matches(found, want)
    (version,) = found["versions"]
    assert version["version"] == job["template_version"] == 1
    _assert_matches(version, want)
    # The listing (no section) names the section, with the same figures; the range echoes.
    status, listed = _get(cloud, "/api/stats/templates")
    assert status == 200 and listed["truncated"] is False
    names = [s["section"] for s in listed["sections"]]
    assert section in names and names == sorted(names)  # this tenant's sections only, by name
    assert all(name.startswith("stats-") for name in names)
    assert listed["sections"][names.index(section)] == found
    today = datetime.now(UTC).date()
    assert listed["until"] == today.isoformat() and listed["since"] == (today - timedelta(days=29)).isoformat()


def _queue_idle(url: str) -> bool:
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return all(v == "0" for v in attrs["Attributes"].values())


def test_redelivered_messages_and_a_finalize_rerun_do_not_change_the_stats(
        cloud: Any, poster_job: tuple[str, dict[str, Any]]) -> None:
    section, job = poster_job
    before = _section_stats(cloud, section, 1)
    job_id = job["job_id"]
    render = cloud.runtime.get(cloud.spec.function("render").name)
    queue = cloud.refs.queue_urls["render"]
    sqs = aws.client("sqs")
    messages = [{"job_id": job_id, "item_id": item.item_id, "spec": item.input} for item in jobs.iter_items(job_id)]
    assert len(messages) == TOTAL
    invocations = render.invocations
    sqs.send_message_batch(QueueUrl=queue, Entries=[
        {"Id": str(i), "MessageBody": json.dumps(m, separators=(",", ":"))} for i, m in enumerate(messages)])
    wait_for(lambda: render.invocations > invocations and _queue_idle(queue), timeout=60,
             what="the redelivered messages to be consumed")
    # Finalize's complete step run again (a Step Functions retry): the job is counted once.
    again = jobs.complete_job(job_id, finalize_round=0)
    assert again.status == "completed_with_errors"
    status, after = _get(cloud, f"/api/stats/templates?section={section}")
    assert status == 200 and after["sections"] == [before]
    _, job_now = _get(cloud, f"/api/jobs/{job_id}")
    assert (job_now["processed_items"], job_now["success_count"], job_now["failure_count"]) == (
        TOTAL, TOTAL - len(BAD), len(BAD))


def test_a_retry_round_moves_item_counts_like_the_job_and_counts_the_job_once(cloud: Any) -> None:
    section = f"stats-retry-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": "Stats retry", "format": "jpeg", "width": 200, "height": 100,
        "html_content": HTML}, headers=TENANT)
    assert status == 201, body
    items = [{"consumer_name": "ok", "consumer_message": "hi"}, {"consumer_name": "bad"}]
    status, body, _ = api(cloud, "POST", "/api/generate-batch",
                          {"template_id": f"{section}_latest", "items": items}, headers=TENANT)
    assert status == 202, body
    job_id = body["job_id"]
    first = _finished(cloud, job_id)
    counted = _section_stats(cloud, section, 1)
    assert (counted["jobs"], counted["items"], counted["succeeded"], counted["failed"]) == (1, 2, 1, 1)
    status, body, _ = api(cloud, "POST", f"/api/jobs/{job_id}/retry", headers=TENANT)
    assert status == 200, body

    def second_round() -> Any:
        _, b = _get(cloud, f"/api/jobs/{job_id}")
        return b if b["status"] == "completed_with_errors" and b["completed_at"] != first["completed_at"] else None

    wait_for(second_round, timeout=120, interval=0.3, what="the retry round to finish")
    status, after = _get(cloud, f"/api/stats/templates?section={section}")
    assert status == 200
    (found,) = after["sections"]
    # The failed item was taken back and failed again: the same counts; the job once, with the
    # duration of its first completion.
    assert (found["jobs"], found["items"], found["succeeded"], found["failed"]) == (1, 2, 1, 1)
    assert found["avg_job_duration_ms"] == float(_ms(first))


def test_stats_are_the_callers_tenant_only(cloud: Any, poster_job: tuple[str, dict[str, Any]]) -> None:
    section, _ = poster_job
    _section_stats(cloud, section, 1)
    status, body = _get(cloud, f"/api/stats/templates?section={section}", OTHER)
    assert status == 200 and body["sections"] == []
    status, body = _get(cloud, "/api/stats/templates", OTHER)
    assert status == 200 and body["sections"] == []
    status, body = _get(cloud, "/api/stats/crops", OTHER)
    assert status == 200 and body["crops"]["items"] == 0 and body["crops"]["crop_ms"]["avg"] is None


def test_a_range_without_the_days_has_no_stats(cloud: Any, poster_job: tuple[str, dict[str, Any]]) -> None:
    section, _ = poster_job
    _section_stats(cloud, section, 1)
    old = date.today() - timedelta(days=100)
    status, body = _get(cloud, f"/api/stats/templates?section={section}&since={old - timedelta(days=5)}&until={old}")
    assert status == 200 and body["sections"] == [] and body["since"] == str(old - timedelta(days=5))


def _put(upload: dict[str, Any], data: bytes) -> int:
    req = urllib.request.Request(upload["upload_url"], data=data, method=upload["method"], headers=upload["headers"])
    with urllib.request.urlopen(req, timeout=30) as resp:
        return int(resp.status)


def test_crop_stats_of_a_small_zip_job(cloud: Any) -> None:
    tenant = {"x-api-key": f"stats-crop-{uuid.uuid4().hex[:8]}"}
    status, up, _ = api(cloud, "POST", "/api/uploads", {"kind": "crop", "filename": "team.zip"}, headers=tenant)
    assert status == 201, up
    files = [("a.jpg", photos.jpeg(photos.astronaut())), ("wall.jpg", photos.face_free_jpeg()),
             ("broken.jpg", photos.truncated_jpeg())]
    assert _put(up, photos.zip_of(files)) == 200
    job_id = up["job_id"]

    def finished() -> Any:
        _, b = _get(cloud, f"/api/jobs/{job_id}", tenant)
        return b if b["status"] in ("completed", "completed_with_errors") else None

    job = wait_for(finished, timeout=120, interval=0.3, what="the crop job")
    results = job["results"]
    times = [r["generation_time_ms"] for r in results if r["status"] == "completed"]
    faces = sum(r["face"]["faces_found"] for r in results if r["status"] == "completed")
    assert len(times) == 2 and faces >= 1

    def counted() -> Any:
        status, body = _get(cloud, "/api/stats/crops", tenant)
        assert status == 200, body
        return body if body["crops"]["jobs"] == 1 else None

    body = wait_for(counted, timeout=30, interval=0.2, what="the crop job's stats")
    crops = body["crops"]
    assert set(crops) == {"jobs", "items", "succeeded", "failed", "faces_found", "crop_ms", "avg_job_duration_ms"}
    assert (crops["jobs"], crops["items"], crops["succeeded"], crops["failed"]) == (1, 3, 2, 1)
    assert crops["faces_found"] == faces
    assert (crops["crop_ms"]["avg"], crops["crop_ms"]["min"], crops["crop_ms"]["max"]) == (
        round(sum(times) / 2, 2), min(times), max(times))
    assert crops["avg_job_duration_ms"] == float(_ms(job))
    # Crop jobs are not template sections.
    assert _get(cloud, "/api/stats/templates", tenant)[1]["sections"] == []


@pytest.mark.parametrize("query", [
    "since=2026-13-01", "since=2026/01/01", "until=yesterday", "since=2026-02-30",
    "since=%D9%A2%D9%A0%D9%A2%D9%A6-01-01",  # Arabic-Indic digits
    "since=2026-12-02&until=2026-12-01", "since=2024-01-01&until=2026-01-01",
])
@pytest.mark.parametrize("route", ["/api/stats/templates", "/api/stats/crops"])
def test_bad_dates_are_422_naming_the_format_and_range(cloud: Any, route: str, query: str) -> None:
    status, body = _get(cloud, f"{route}?{query}")
    assert status == 422, body
    error = body["error"]
    assert error["code"] == "invalid_date"
    assert error["details"]["format"] == "YYYY-MM-DD" and error["details"]["max_days"] == stats.MAX_RANGE_DAYS


def test_a_bad_section_is_422(cloud: Any) -> None:
    status, body = _get(cloud, "/api/stats/templates?section=a%23b")
    assert status == 422 and body["error"]["code"] == "invalid_request"


def test_concurrent_duplicate_batches_from_8_threads_give_exact_stats(cloud: Any) -> None:
    """Workers' batches (jobs.finish_batch, as the render worker records them), every outcome
    delivered twice in shuffled batches from 8 threads: the stats count each item once, and
    min/max/avg are those of the recorded durations exactly."""
    headers = {"x-api-key": f"stats-race-{uuid.uuid4().hex[:8]}"}
    status, who, _ = api(cloud, "GET", "/api/webhook-secret", headers=headers)
    assert status == 200, who
    section, n = f"race-{uuid.uuid4().hex[:6]}", 120
    # No total: the job never completes, so only item stats move (no finalize for fake outputs).
    job = jobs.create_job("poster", None, template_id=f"{section}_v3", template_section=section,
                          template_version=3, tenant=who["tenant"])
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=i) for i in range(n)])
    rng = random.Random(19)
    outcomes: dict[int, jobs.ItemOutcome] = {}
    for i in range(n):
        if rng.random() < 0.8:
            outcomes[i] = jobs.ItemOutcome(item_id=i, status=jobs.ItemStatus.SUCCEEDED, output_key=f"k/{i}",
                                           timings={"total_ms": rng.uniform(5, 5000)})
        else:
            outcomes[i] = jobs.ItemOutcome(item_id=i, status=jobs.ItemStatus.FAILED, error="bad",
                                           error_code="missing_placeholders")
    deliveries = [i for i in range(n) for _ in range(2)]
    rng.shuffle(deliveries)
    batches = [deliveries[k:k + 10] for k in range(0, len(deliveries), 10)]

    def deliver(batch: list[int]) -> list[int]:
        # A batch may carry the same item twice (a duplicate message): it is recorded one by one.
        return jobs.finish_batch([(job.job_id, outcomes[i], i) for i in batch])

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(unrecorded == [] for unrecorded in pool.map(deliver, batches))
    times = [round(o.timings["total_ms"]) for o in outcomes.values() if o.timings]
    status, body = _get(cloud, f"/api/stats/templates?section={section}", headers)
    assert status == 200, body
    (found,) = body["sections"]
    want = {"jobs": 0, "items": n, "succeeded": len(times), "failed": n - len(times),
            "avg": round(sum(times) / len(times), 2), "min": min(times), "max": max(times), "times": times,
            "avg_job_duration_ms": None}
    _assert_matches(found, want)
    assert [v["version"] for v in found["versions"]] == [3]
    after = jobs.get_job(job.job_id)
    assert (after.processed, after.succeeded, after.failed) == (n, want["succeeded"], want["failed"])


def test_the_stats_event_fixture_answers_as_the_api(cloud: Any, poster_job: tuple[str, dict[str, Any]]) -> None:
    """events/api/stats-templates.json (a REST proxy event with an API key) through fn api."""
    section, _ = poster_job
    found = _section_stats(cloud, section, 1)
    status, who, _ = api(cloud, "GET", "/api/webhook-secret", headers=TENANT)
    assert status == 200, who
    today = datetime.now(UTC).date()
    event = load_event("api/stats-templates", section=section, since=str(today - timedelta(days=1)),
                       until=str(today), api_key_id=who["tenant"], api_key=TENANT["x-api-key"])
    result = cloud.runtime.invoke(cloud.spec.function("api").name, event)
    assert not result.failed, result.error_message
    answer = result.payload
    assert answer["statusCode"] == 200, answer
    body = json.loads(answer["body"])
    assert body["since"] == str(today - timedelta(days=1)) and body["sections"] == [found]


def test_a_hundred_outcomes_in_one_call_fit_the_transaction_limit(cloud: Any) -> None:
    """finish_items splits into transactions of FINISH_BATCH items + the counter + the stats
    action, within DynamoDB's 100 actions; all land in the stats."""
    headers = {"x-api-key": f"stats-big-{uuid.uuid4().hex[:8]}"}
    status, who, _ = api(cloud, "GET", "/api/webhook-secret", headers=headers)
    assert status == 200, who
    section, n = f"big-{uuid.uuid4().hex[:6]}", 100
    job = jobs.create_job("poster", None, template_id=f"{section}_v1", template_section=section,
                          template_version=1, tenant=who["tenant"])
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=i) for i in range(n)])
    results = jobs.finish_items(job.job_id, [
        jobs.ItemOutcome(item_id=i, status=jobs.ItemStatus.SUCCEEDED, timings={"total_ms": float(10 + i)})
        for i in range(n)])
    assert all(r.counted for r in results)
    (found,) = _get(cloud, f"/api/stats/templates?section={section}", headers)[1]["sections"]
    assert (found["items"], found["succeeded"]) == (n, n)
    assert (found["generation_ms"]["min"], found["generation_ms"]["max"]) == (10, 10 + n - 1)
    assert found["generation_ms"]["avg"] == round(sum(range(10, 10 + n)) / n, 2)
