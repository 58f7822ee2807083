"""Pagination of items, job listings newest first and by status, and job logs."""

from __future__ import annotations

import pytest

from posterflow import jobs
from posterflow import resources as r


def test_items_page_in_id_order_with_an_opaque_cursor(aws_stack: r.ResourceRefs) -> None:
    job = jobs.create_job("poster", 25)
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=i, entity_id=str(1000 + i), input={"i": i}) for i in range(25)])
    pages: list[list[int]] = []
    cursor: str | None = None
    while True:
        items, cursor = jobs.list_items(job.job_id, limit=10, cursor=cursor)
        pages.append([i.item_id for i in items])
        if cursor is None:
            break
        assert "ITEM#" not in cursor  # opaque, not the raw key
    assert pages == [list(range(10)), list(range(10, 20)), list(range(20, 25))]
    assert jobs.list_items(job.job_id)[0][24].entity_id == "1024"


def test_items_filtered_by_status_page_too(aws_stack: r.ResourceRefs) -> None:
    job = jobs.create_job("poster", 12)
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=i) for i in range(12)])
    for i in range(0, 12, 3):
        jobs.finish_item(job.job_id, i, status="failed", error="bad", error_code="malformed")
    seen: list[int] = []
    cursor: str | None = None
    while True:
        items, cursor = jobs.list_items(job.job_id, limit=3, cursor=cursor, status="failed")
        seen += [i.item_id for i in items]
        assert all(i.status == jobs.ItemStatus.FAILED for i in items)
        if cursor is None:
            break
    assert seen == [0, 3, 6, 9]


def test_cursors_are_checked(aws_stack: r.ResourceRefs) -> None:
    a = jobs.create_job("poster", 3)
    b = jobs.create_job("poster", 3)
    for job in (a, b):
        jobs.put_items(job.job_id, [jobs.NewItem(item_id=i) for i in range(3)])
    _, cursor = jobs.list_items(a.job_id, limit=1)
    assert cursor is not None
    with pytest.raises(jobs.InvalidCursor):
        jobs.list_items(b.job_id, limit=1, cursor=cursor)
    with pytest.raises(jobs.InvalidCursor):
        jobs.list_items(a.job_id, limit=1, cursor="not-a-cursor!")
    with pytest.raises(jobs.InvalidCursor):
        jobs.list_jobs(limit=1, cursor=cursor)


def test_list_jobs_newest_first_across_pages(aws_stack: r.ResourceRefs) -> None:
    mine = [jobs.create_job("poster", 1, name=f"n{i}").job_id for i in range(5)]
    jobs.set_status(mine[1], "processing")
    jobs.cancel_job(mine[3], mark_items=False)
    listed: list[str] = []
    created: list[str] = []
    cursor: str | None = None
    while True:
        page, cursor = jobs.list_jobs(limit=2, cursor=cursor)
        listed += [j.job_id for j in page]
        created += [j.created_at for j in page]
        if cursor is None or all(m in listed for m in mine):
            break
    assert created == sorted(created, reverse=True)
    assert len(listed) == len(set(listed))
    assert [j for j in listed if j in mine] == list(reversed(mine))


def test_list_jobs_by_status(aws_stack: r.ResourceRefs) -> None:
    a = jobs.create_job("crop", 1).job_id
    b = jobs.create_job("crop", 1).job_id
    jobs.cancel_job(a, mark_items=False)
    jobs.cancel_job(b, mark_items=False)
    queued = jobs.create_job("crop", 1).job_id
    cancelled, _ = jobs.list_jobs("cancelled", limit=1000)
    ids = [j.job_id for j in cancelled]
    assert ids.index(b) < ids.index(a)  # newest first
    assert queued not in ids
    assert all(j.status == jobs.JobStatus.CANCELLED for j in cancelled)
    first, cursor = jobs.list_jobs(jobs.JobStatus.CANCELLED, limit=1)
    assert [j.job_id for j in first] == [ids[0]] and cursor is not None
    second, _ = jobs.list_jobs(jobs.JobStatus.CANCELLED, limit=1, cursor=cursor)
    assert [j.job_id for j in second] == [ids[1]]
    with pytest.raises(ValueError):
        jobs.list_jobs("exploded")


def test_job_fields_survive_the_round_trip(aws_stack: r.ResourceRefs) -> None:
    created = jobs.create_job("poster", 2, template_id="testimonial_latest", template_section="testimonial",
                              template_version=3, notify_email="a@example.com", webhook_url="https://h.example/x",
                              metadata={"user_id": 123, "ratio": 0.5, "tags": ["q1"]}, name="Q1 batch")
    got = jobs.get_job(created.job_id)
    assert got == created
    assert got.metadata == {"user_id": 123, "ratio": 0.5, "tags": ["q1"]}
    assert got.token and got.expires_at > got.last_progress_at
    with pytest.raises(jobs.JobStateConflict):
        jobs.create_job("poster", 1, job_id=created.job_id)


def test_logs_in_order_with_details_and_pages(aws_stack: r.ResourceRefs) -> None:
    job = jobs.create_job("poster", 1)
    jobs.add_log(job.job_id, "info", "Processing 1 template posters in parallel")
    jobs.add_log(job.job_id, "WARN", "slow render", {"ms": 2500})
    jobs.add_log(job.job_id, "ERROR", "webhook failed", {"status": 500})
    logs, _ = jobs.list_logs(job.job_id)
    assert [(x.level, x.message) for x in logs] == [
        ("INFO", "Processing 1 template posters in parallel"), ("WARNING", "slow render"), ("ERROR", "webhook failed"),
    ]
    assert logs[1].details == {"ms": 2500}
    newest, cursor = jobs.list_logs(job.job_id, limit=2, newest_first=True)
    assert [x.message for x in newest] == ["webhook failed", "slow render"] and cursor is not None
    rest, cursor = jobs.list_logs(job.job_id, limit=2, newest_first=True, cursor=cursor)
    assert [x.message for x in rest] == ["Processing 1 template posters in parallel"]
    with pytest.raises(ValueError):
        jobs.add_log(job.job_id, "LOUD", "no such level")
