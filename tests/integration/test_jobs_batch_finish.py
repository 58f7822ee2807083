"""finish_items: a worker's batch of outcomes counted exactly once with one counter write,
falling back to one-by-one when a redelivered item is among them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from posterflow import jobs
from posterflow import resources as r


def _new_job(n: int) -> jobs.Job:
    job = jobs.create_job("poster", n, template_id="testimonial_latest")
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=i, entity_id=f"e{i}", input={"n": i}) for i in range(n)])
    return job


def _ok(i: int) -> jobs.ItemOutcome:
    return jobs.ItemOutcome(item_id=i, status=jobs.ItemStatus.SUCCEEDED, output_key=f"outputs/{i}.png",
                            timings={"total_ms": 40.0 + i}, extra={"template_version": 3})


def test_a_batch_is_counted_once_with_its_fields(aws_stack: r.ResourceRefs) -> None:
    job = _new_job(12)
    batch = [_ok(i) for i in range(8)] + [
        jobs.ItemOutcome(item_id=8, status=jobs.ItemStatus.FAILED, error="missing placeholders: name",
                         error_code="missing_placeholders"),
        jobs.ItemOutcome(item_id=9, status=jobs.ItemStatus.CANCELLED, error="job cancelled", error_code="cancelled"),
    ]
    results = jobs.finish_items(job.job_id, batch)
    assert [r.counted for r in results] == [True] * 10
    after = jobs.get_job(job.job_id)
    assert (after.processed, after.succeeded, after.failed, after.cancelled) == (10, 8, 1, 1)
    assert after.status == jobs.JobStatus.PROCESSING
    item = jobs.get_item(job.job_id, 3)
    assert (item.status, item.output_key, item.attempts, item.extra) == (
        jobs.ItemStatus.SUCCEEDED, "outputs/3.png", 1, {"template_version": 3})
    failed = jobs.get_item(job.job_id, 8)
    assert (failed.error_code, failed.error) == ("missing_placeholders", "missing placeholders: name")
    assert jobs.get_item(job.job_id, 10).status == jobs.ItemStatus.PENDING


def test_a_redelivered_item_in_the_batch_counts_once(aws_stack: r.ResourceRefs) -> None:
    job = _new_job(5)
    jobs.finish_item(job.job_id, 2, status="failed", error="exhausted retries",
                     error_code="retries_exhausted")
    results = jobs.finish_items(job.job_id, [_ok(i) for i in range(5)])
    assert [r.result for r in results] == [jobs.FinishResult.FINISHED] * 2 + [jobs.FinishResult.ALREADY_DONE] + [
        jobs.FinishResult.FINISHED] * 2
    assert results[2].item_status == jobs.ItemStatus.FAILED  # the first outcome stands
    after = jobs.get_job(job.job_id)
    assert (after.processed, after.succeeded, after.failed) == (5, 4, 1)
    # the batch completed the job: finalize started exactly once
    assert sum(r.finalize_started for r in results) == 1


def test_the_same_batch_twice_and_batches_racing_count_exactly(aws_stack: r.ResourceRefs) -> None:
    n = 120
    job = _new_job(n)
    chunks = [[_ok(i) for i in range(start, start + 10)] for start in range(0, n, 10)]
    with ThreadPoolExecutor(6) as pool:  # every chunk delivered twice, concurrently
        list(pool.map(lambda c: jobs.finish_items(job.job_id, c), chunks + chunks))
    after = jobs.get_job(job.job_id)
    assert (after.processed, after.succeeded) == (n, n)
    assert all(i.attempts == 1 for i in jobs.iter_items(job.job_id))


def test_unknown_job_and_pending_status_are_refused(aws_stack: r.ResourceRefs) -> None:
    with pytest.raises(jobs.ItemNotFound):  # as finish_item: the items of an unknown job do not exist
        jobs.finish_items("no-such-job", [_ok(0), _ok(1)])
    job = _new_job(2)
    with pytest.raises(ValueError, match="pending"):
        jobs.finish_items(job.job_id, [_ok(0), jobs.ItemOutcome(item_id=1, status=jobs.ItemStatus.PENDING)])
    assert jobs.get_job(job.job_id).processed == 0
