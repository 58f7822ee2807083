"""Exactly-once counting and the finalize trigger, against the embedded AWS."""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from posterflow import aws, jobs
from posterflow import resources as r


def _new_job(n: int, *, streamed: bool = False) -> jobs.Job:
    """A job with ``n`` pending items; a streamed one has no total yet (the splitter's case)."""
    job = jobs.create_job("poster", None if streamed else n, template_id="testimonial_latest")
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=i, entity_id=f"e{i}", input={"n": i}) for i in range(n)])
    return job


def _executions(refs: r.ResourceRefs, name_prefix: str) -> list[dict[str, Any]]:
    sfn = aws.client("stepfunctions")
    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"stateMachineArn": refs.state_machine_arns["finalize"], "maxResults": 1000}
        if token:
            kwargs["nextToken"] = token
        resp = sfn.list_executions(**kwargs)
        found += [e for e in resp["executions"] if e["name"].startswith(name_prefix)]
        token = resp.get("nextToken")
        if not token:
            return found


def test_same_finish_delivered_twice_counts_once(aws_stack: r.ResourceRefs) -> None:
    job = _new_job(3)
    first = jobs.finish_item(job.job_id, 1, status="succeeded", output_key="outputs/a.png",
                             timings={"total_ms": 41.5})
    again = jobs.finish_item(job.job_id, 1, status="succeeded", output_key="outputs/a.png")
    late_failure = jobs.finish_item(job.job_id, 1, status="failed", error="exhausted retries",
                     error_code="retries_exhausted")

    assert first.result == jobs.FinishResult.FINISHED and first.counted
    assert again.result == jobs.FinishResult.ALREADY_DONE and not again.counted
    assert late_failure.result == jobs.FinishResult.ALREADY_DONE
    assert late_failure.item_status == jobs.ItemStatus.SUCCEEDED
    after = jobs.get_job(job.job_id)
    assert (after.processed, after.succeeded, after.failed) == (1, 1, 0)
    assert after.status == jobs.JobStatus.PROCESSING  # the first landed item moves it on
    item = jobs.get_item(job.job_id, 1)
    assert item.status == jobs.ItemStatus.SUCCEEDED and item.attempts == 1
    assert item.output_key == "outputs/a.png" and item.generation_time_ms == 42
    assert item.error is None


def test_concurrent_finishes_from_8_threads_give_exact_counters(aws_stack: r.ResourceRefs) -> None:
    n = 200
    job = _new_job(n)
    rng = random.Random(7)
    wanted = {i: rng.choice([jobs.ItemStatus.SUCCEEDED] * 8 + [jobs.ItemStatus.FAILED, jobs.ItemStatus.SKIPPED])
              for i in range(n)}
    # Every item is delivered twice, in shuffled order, so duplicates race each other too.
    deliveries = [i for i in range(n) for _ in range(2)]
    rng.shuffle(deliveries)

    def deliver(i: int) -> jobs.FinishOutcome:
        status = wanted[i]
        return jobs.finish_item(job.job_id, i, status=status,
                                error="bad row" if status == jobs.ItemStatus.FAILED else None,
                                error_code="malformed" if status == jobs.ItemStatus.FAILED else None,
                                output_key=f"outputs/{job.job_id}/{i}.png" if status == "succeeded" else None)

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(deliver, deliveries))

    expected = Counter(wanted.values())
    after = jobs.get_job(job.job_id)
    assert after.total == after.processed == n
    assert after.succeeded == expected[jobs.ItemStatus.SUCCEEDED]
    assert after.failed == expected[jobs.ItemStatus.FAILED]
    assert after.skipped == expected[jobs.ItemStatus.SKIPPED]
    assert sum(o.counted for o in outcomes) == n
    assert sum(o.finalize_started for o in outcomes) == 1
    assert [e["name"] for e in _executions(aws_stack, job.job_id)] == [job.job_id]
    statuses = Counter(item.status for item in jobs.iter_items(job.job_id, consistent=True))
    assert statuses == expected


def test_the_finishing_write_starts_exactly_one_finalize(aws_stack: r.ResourceRefs) -> None:
    job = _new_job(2)
    one = jobs.finish_item(job.job_id, 0, status="succeeded")
    assert not one.finalize_started and _executions(aws_stack, job.job_id) == []
    last = jobs.finish_item(job.job_id, 1, status="failed", error="missing placeholders: name",
                            error_code="missing_placeholders")
    assert last.finalize_started
    assert last.job is not None and last.job.is_complete
    # A redelivery of the last message and an explicit check do not start a second one.
    assert not jobs.finish_item(job.job_id, 1, status="failed").finalize_started
    assert not jobs.check_completion(job.job_id)
    executions = _executions(aws_stack, job.job_id)
    assert [e["name"] for e in executions] == [job.job_id]
    assert jobs.get_job(job.job_id).finalize_claimed_round == 0


def test_streamed_job_finalizes_when_the_total_arrives_after_the_items(aws_stack: r.ResourceRefs) -> None:
    job = _new_job(3, streamed=True)
    assert job.total is None and not job.is_complete
    for i in range(3):
        assert not jobs.finish_item(job.job_id, i, status="succeeded").finalize_started
    assert _executions(aws_stack, job.job_id) == []
    result = jobs.set_total(job.job_id, 3)
    assert result.finalize_started and result.job.total == 3
    assert jobs.set_total(job.job_id, 3).finalize_started is False  # idempotent
    with pytest.raises(jobs.JobStateConflict):
        jobs.set_total(job.job_id, 4)
    assert len(_executions(aws_stack, job.job_id)) == 1


def test_total_below_processed_is_refused(aws_stack: r.ResourceRefs) -> None:
    job = _new_job(3, streamed=True)
    jobs.finish_item(job.job_id, 0, status="succeeded")
    jobs.finish_item(job.job_id, 1, status="succeeded")
    with pytest.raises(jobs.JobStateConflict, match="processed 2"):
        jobs.set_total(job.job_id, 1)


def test_empty_job_finalizes_on_total_zero(aws_stack: r.ResourceRefs) -> None:
    job = jobs.create_job("crop", None)
    assert jobs.set_total(job.job_id, 0).finalize_started


def test_unknown_ids_and_bad_statuses(aws_stack: r.ResourceRefs) -> None:
    job = _new_job(1)
    with pytest.raises(jobs.ItemNotFound):
        jobs.finish_item(job.job_id, 5, status="succeeded")
    with pytest.raises(jobs.ItemNotFound):
        jobs.finish_item("0" * 32, 0, status="succeeded")
    with pytest.raises(ValueError, match="terminal"):
        jobs.finish_item(job.job_id, 0, status="pending")
    with pytest.raises(ValueError):
        jobs.finish_item(job.job_id, 0, status="exploded")
    with pytest.raises(jobs.JobNotFound):
        jobs.get_job("0" * 32)


def test_extra_fields_and_long_errors_are_kept_bounded(aws_stack: r.ResourceRefs) -> None:
    job = jobs.create_job("crop", 1)
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=0, entity_id="photo.jpg", input_key="uploads/x/photo.jpg")])
    jobs.finish_item(job.job_id, 0, status="failed", error="x" * 10_000, error_code="corrupt",
                     extra={"face_found": False, "box": [1, 2, 3.5, 4]})
    item = jobs.get_item(job.job_id, 0)
    assert item.extra == {"face_found": False, "box": [1, 2, 3.5, 4]}
    assert item.error is not None and len(item.error) <= 4000 and item.error.endswith("[truncated]")
    assert item.input_key == "uploads/x/photo.jpg"
