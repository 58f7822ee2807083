"""Cancel, retry, status rules, completion and the stall sweep, against the embedded AWS."""

from __future__ import annotations

import time

import pytest

from posterflow import aws, jobs
from posterflow import resources as r


def _new_job(n: int, *, total: int | None = None, ids: range | None = None) -> jobs.Job:
    job = jobs.create_job("poster", n if total is None else total, notify_email="ops@example.com",
                          webhook_url="https://hooks.example.com/x", metadata={"campaign": "Q1"}, name="batch")
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=i, entity_id=f"e{i}") for i in (ids or range(n))])
    return job


def _execution_names(refs: r.ResourceRefs, job_id: str) -> list[str]:
    resp = aws.client("stepfunctions").list_executions(stateMachineArn=refs.state_machine_arns["finalize"],
                                                       maxResults=1000)
    return sorted(e["name"] for e in resp["executions"] if e["name"].startswith(job_id))


def test_cancel_finishes_pending_items_so_counters_complete(aws_stack: r.ResourceRefs) -> None:
    job = _new_job(10)
    for i in range(3):
        jobs.finish_item(job.job_id, i, status="succeeded")
    assert not jobs.is_cancelled(job.job_id)

    outcome = jobs.cancel_job(job.job_id)

    assert outcome.items_cancelled == 7 and not outcome.items_remaining
    after = outcome.job
    assert after.status == jobs.JobStatus.CANCELLED and after.completed_at is not None
    assert (after.processed, after.succeeded, after.cancelled, after.total) == (10, 3, 7, 10)
    assert jobs.is_cancelled(job.job_id)
    assert jobs.get_item(job.job_id, 9).status == jobs.ItemStatus.CANCELLED
    assert _execution_names(aws_stack, job.job_id) == [job.job_id]  # the archive of what was done
    # Cancelling again is harmless; a late worker's finish is already_done.
    assert jobs.cancel_job(job.job_id).items_cancelled == 0
    assert jobs.finish_item(job.job_id, 5, status="succeeded").result == jobs.FinishResult.ALREADY_DONE
    # finalize keeps the cancelled status.
    assert jobs.complete_job(job.job_id, archive_key="archives/x.zip").status == jobs.JobStatus.CANCELLED


def test_cancel_with_a_deadline_leaves_items_to_workers(aws_stack: r.ResourceRefs) -> None:
    job = _new_job(4)
    outcome = jobs.cancel_job(job.job_id, deadline_s=0.0)
    assert outcome.items_remaining and outcome.items_cancelled == 0
    assert jobs.is_cancelled(job.job_id)  # what a worker checks before working on item 2
    assert jobs.finish_item(job.job_id, 2, status="cancelled").counted


def test_a_finished_job_cannot_be_cancelled(aws_stack: r.ResourceRefs) -> None:
    job = _new_job(1)
    jobs.finish_item(job.job_id, 0, status="succeeded")
    assert jobs.complete_job(job.job_id).status == jobs.JobStatus.COMPLETED
    with pytest.raises(jobs.JobStateConflict) as err:
        jobs.cancel_job(job.job_id)
    assert err.value.current == jobs.JobStatus.COMPLETED


def test_retry_resets_failed_items_and_corrects_counters(aws_stack: r.ResourceRefs) -> None:
    job = _new_job(5)
    for i in range(5):
        jobs.finish_item(job.job_id, i, status="failed" if i in (1, 3) else "succeeded",
                         error=f"missing placeholder in row {i}" if i in (1, 3) else None,
                         error_code="missing_placeholders" if i in (1, 3) else None)
    done = jobs.complete_job(job.job_id, finalize_round=0)
    assert done.status == jobs.JobStatus.COMPLETED_WITH_ERRORS

    retried = jobs.retry_failed(job.job_id)

    assert sorted(i.item_id for i in retried) == [1, 3]
    after = jobs.get_job(job.job_id)
    assert (after.processed, after.succeeded, after.failed) == (3, 3, 0)
    assert after.status == jobs.JobStatus.PROCESSING and after.finalize_round == 1
    item = jobs.get_item(job.job_id, 1)
    assert item.status == jobs.ItemStatus.PENDING and item.error is None and item.error_code is None
    assert jobs.retry_failed(job.job_id) == []  # nothing failed any more: no double correction
    # The retried items land; the new round gets its own finalize execution.
    jobs.finish_item(job.job_id, 1, status="succeeded")
    last = jobs.finish_item(job.job_id, 3, status="succeeded")
    assert last.finalize_started
    assert _execution_names(aws_stack, job.job_id) == [job.job_id, f"{job.job_id}-retry1"]
    with pytest.raises(jobs.JobStateConflict, match="round 0"):
        jobs.complete_job(job.job_id, finalize_round=0)
    assert jobs.complete_job(job.job_id, finalize_round=1).status == jobs.JobStatus.COMPLETED
    assert jobs.get_item(job.job_id, 1).attempts == 2


def test_status_rules_protect_final_statuses(aws_stack: r.ResourceRefs) -> None:
    job = _new_job(2)
    jobs.finish_item(job.job_id, 0, status="succeeded")
    with pytest.raises(jobs.JobStateConflict, match="1 of 2"):
        jobs.complete_job(job.job_id)
    jobs.set_status(job.job_id, "processing")
    failed = jobs.fail_job(job.job_id, "the upload is not a CSV file (binary content)")
    assert failed.status == jobs.JobStatus.FAILED and failed.error is not None
    with pytest.raises(jobs.JobStateConflict):
        jobs.set_status(job.job_id, jobs.JobStatus.COMPLETED)
    with pytest.raises(jobs.JobStateConflict):
        jobs.set_status(job.job_id, jobs.JobStatus.QUEUED)
    assert jobs.set_status(job.job_id, "failed", stage="split").extra == {"stage": "split"}
    with pytest.raises(jobs.JobNotFound):
        jobs.set_status("f" * 32, "processing")


def test_complete_job_is_idempotent_and_counts_decide(aws_stack: r.ResourceRefs) -> None:
    job = _new_job(2)
    jobs.finish_item(job.job_id, 0, status="succeeded")
    jobs.finish_item(job.job_id, 1, status="skipped")
    # The finalize execution started by the last finish may complete the job first; either
    # way the status comes from the counters and a second call changes nothing.
    first = jobs.complete_job(job.job_id, archive_key="archives/a.zip")
    again = jobs.complete_job(job.job_id, archive_key="archives/other.zip")
    assert first.status == again.status == jobs.JobStatus.COMPLETED
    assert first.archive_key is not None and again.archive_key == first.archive_key
    assert again.completed_at == first.completed_at


def test_sweep_fails_stalled_items_and_writes_missing_ones(aws_stack: r.ResourceRefs) -> None:
    stalled = _new_job(4, total=6)  # items 4 and 5 were never written
    jobs.finish_item(stalled.job_id, 0, status="succeeded")
    fresh = _new_job(2)
    never = jobs.create_job("crop", None)

    later = time.time() + 1000
    swept = jobs.sweep_stalled(500, now=later, job_ids=[stalled.job_id, never.job_id])
    assert sorted(swept) == sorted([stalled.job_id, never.job_id])
    assert jobs.sweep_stalled(500, job_ids=[fresh.job_id]) == []  # it moved moments ago

    after = jobs.get_job(stalled.job_id)
    assert (after.processed, after.succeeded, after.failed, after.total) == (6, 1, 5, 6)
    for i in range(1, 6):
        item = jobs.get_item(stalled.job_id, i)
        assert item.status == jobs.ItemStatus.FAILED and item.error == "no progress for 500 s"
        assert item.error_code == "stalled"
    assert _execution_names(aws_stack, stalled.job_id) == [stalled.job_id]
    logs, _ = jobs.list_logs(stalled.job_id)  # finalize may add its own logs meanwhile
    sweep_logs = [x for x in logs if x.message == "stalled: no progress for 500 s"]
    assert [(x.level, x.details) for x in sweep_logs] == [("WARNING", {"items_failed": 5, "items_never_written": 2})]
    empty = jobs.get_job(never.job_id)
    assert empty.status == jobs.JobStatus.FAILED and empty.error is not None and "no items" in empty.error


def test_sweep_counts_items_of_a_job_whose_splitter_died(aws_stack: r.ResourceRefs) -> None:
    job = jobs.create_job("poster", None)
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=i) for i in range(3)])
    jobs.finish_item(job.job_id, 1, status="succeeded")
    assert jobs.sweep_stalled(60, now=time.time() + 120, job_ids=[job.job_id]) == [job.job_id]
    after = jobs.get_job(job.job_id)
    assert (after.total, after.processed, after.failed) == (3, 3, 2)


def test_put_items_if_absent_never_resets_a_finished_item(aws_stack: r.ResourceRefs) -> None:
    job = _new_job(2)
    jobs.finish_item(job.job_id, 0, status="succeeded")
    written = jobs.put_items(job.job_id, [jobs.NewItem(item_id=0), jobs.NewItem(item_id=1), jobs.NewItem(item_id=2)],
                             if_absent=True)
    assert written == 1
    assert jobs.get_item(job.job_id, 0).status == jobs.ItemStatus.SUCCEEDED
    assert jobs.get_item(job.job_id, 2).status == jobs.ItemStatus.PENDING


def test_inputs_too_large_for_an_item_are_refused(aws_stack: r.ResourceRefs) -> None:
    job = jobs.create_job("poster", 1)
    with pytest.raises(jobs.ItemTooLarge, match="input_key"):
        jobs.put_items(job.job_id, [jobs.NewItem(item_id=0, input={"html": "x" * 70_000})])
    with pytest.raises(jobs.ItemTooLarge):
        jobs.create_job("poster", 1, metadata={"blob": "x" * 40_000})
    with pytest.raises(ValueError):
        jobs.put_items(job.job_id, [jobs.NewItem(item_id=1_000_000)])
