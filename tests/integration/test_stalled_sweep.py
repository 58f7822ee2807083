"""A job that stalls is swept: its outstanding items fail with a reason and the job completes."""

from __future__ import annotations

from typing import Any

from posterflow import jobs
from tests.integration.helpers import wait_for


def test_sweep_fails_outstanding_items_and_completes_the_job(cloud: Any) -> None:
    job = jobs.create_job("poster", total=3, name="stalls")
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=i, entity_id=f"e{i}", input={}) for i in range(2)])
    jobs.finish_item(job.job_id, 0, status="succeeded", output_key=None)
    # No worker ever takes items 1 and 2 (item 2 was never even written): the sweep does.
    result = cloud.invoke("dlq", {"action": "sweep", "older_than_s": 0, "job_ids": [job.job_id]})
    assert not result.failed, result.error_payload()
    assert result.payload == {"swept": [job.job_id]}
    done = wait_for(lambda: (j := jobs.get_job(job.job_id)).is_final and j, timeout=60, what="job to finish")
    assert (done.status, done.processed, done.succeeded, done.failed) == ("completed_with_errors", 3, 1, 2)
    errors = [(i.error_code, i.error) for i in jobs.iter_items(job.job_id) if i.status == "failed"]
    assert len(errors) == 2 and all(code == "stalled" and e and "no progress" in e for code, e in errors)


def test_a_moving_job_is_not_swept(cloud: Any) -> None:
    job = jobs.create_job("poster", total=1, name="moving")
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=0, input={})])
    result = cloud.invoke("dlq", {"action": "sweep", "older_than_s": 3600, "job_ids": [job.job_id]})
    assert result.payload == {"swept": []}
    assert jobs.get_job(job.job_id).processed == 0
