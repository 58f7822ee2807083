"""POST /api/jobs/{id}/retry sends a job's failed items again, for poster and crop jobs alike;
items with nothing to send again stay failed with their reason."""

from __future__ import annotations

import io
import uuid
from typing import Any

from PIL import Image

from posterflow import aws, jobs
from tests import photos
from tests.integration.helpers import api, fetch, wait_for


def _final(job_id: str, round_no: int = 0) -> jobs.Job:
    def done() -> jobs.Job | None:
        job = jobs.get_job(job_id)
        return job if job.is_final and job.finalize_round == round_no else None

    return wait_for(done, timeout=120, interval=0.3, what=f"job {job_id} to finish round {round_no}")  # type: ignore[no-any-return]


def test_a_crop_photo_that_was_missing_succeeds_on_retry_with_the_jobs_options(cloud: Any) -> None:
    bucket = cloud.refs.bucket
    s3 = aws.client("s3")
    present, missing = (f"uploads/default/{uuid.uuid4().hex[:8]}/{name}.jpg" for name in ("ada", "grace"))
    s3.put_object(Bucket=bucket, Key=present, Body=photos.jpeg(photos.astronaut()))
    status, body, _ = api(cloud, "POST", "/api/batch/add-images",
                          {"images": [present, missing], "options": {"size": 200}})
    assert status in (200, 201, 202), body
    job_id = body["batchId"]
    first = _final(job_id)
    assert (first.status, first.succeeded, first.failed) == ("completed_with_errors", 1, 1)

    s3.put_object(Bucket=bucket, Key=missing, Body=photos.jpeg(photos.camera()))
    status, body, _ = api(cloud, "POST", f"/api/jobs/{job_id}/retry")
    assert status == 200 and body["retried"] == 1, body
    again = _final(job_id, round_no=1)
    assert (again.status, again.processed, again.succeeded, again.failed) == ("completed", 2, 2, 0)
    status, body, _ = api(cloud, "GET", f"/api/jobs/{job_id}")
    retried = next(r for r in body["results"] if r["item_id"] == 1)
    assert retried["status"] == "completed" and retried["error"] is None
    assert Image.open(io.BytesIO(fetch(retried["url"]))).size == (200, 200)  # the batch's size, not the default


def test_a_zip_entry_is_sent_again_and_a_skipped_one_is_left_alone(cloud: Any) -> None:
    key = f"uploads/retry-{uuid.uuid4().hex[:8]}.zip"
    files = [("a/ada.jpg", photos.jpeg(photos.astronaut())), ("a/broken.jpg", photos.truncated_jpeg()),
             ("a/notes.txt", b"not a photo")]
    aws.client("s3").put_object(Bucket=cloud.refs.bucket, Key=key, Body=photos.zip_of(files))
    job = wait_for(lambda: next((j for j in jobs.list_jobs(limit=100)[0]
                                 if j.metadata.get("upload") == key and j.total is not None), None),
                   timeout=60, interval=0.3, what="the ZIP's job")
    first = _final(job.job_id)
    assert (first.succeeded, first.failed, first.skipped) == (1, 1, 1)

    status, body, _ = api(cloud, "POST", f"/api/jobs/{job.job_id}/retry")
    assert status == 200 and body["retried"] == 1, body
    again = _final(job.job_id, round_no=1)
    assert (again.status, again.processed, again.succeeded, again.failed, again.skipped) == (
        "completed_with_errors", 3, 1, 1, 1)
    items = {i.item_id: i for i in jobs.iter_items(job.job_id)}
    assert items[1].attempts == 2 and items[1].error_code == "truncated"  # the worker saw it again
    assert items[2].status == "skipped" and items[2].attempts == 1


def test_retry_of_an_unknown_job_is_404(cloud: Any) -> None:
    status, body, _ = api(cloud, "POST", "/api/jobs/nope-not-a-job/retry")
    assert status == 404 and body["error"]["code"], body
