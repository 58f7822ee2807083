"""A ZIP of photos dropped into S3 becomes a crop job: one item per entry, faces cropped."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from posterflow import aws, jobs
from tests import photos
from tests.integration.helpers import api, fetch, wait_for


def _drop(cloud: Any, key: str, data: bytes, **metadata: str) -> None:
    aws.client("s3").put_object(Bucket=cloud.refs.bucket, Key=key, Body=data, Metadata=metadata)


def _job_for(upload_key: str) -> jobs.Job:
    def find() -> jobs.Job | None:
        found, _ = jobs.list_jobs(limit=100)
        return next((j for j in found if j.metadata.get("upload") == upload_key and j.total is not None), None)

    return wait_for(find, timeout=60, interval=0.3, what=f"a job for {upload_key}")  # type: ignore[no-any-return]


def test_zip_drop_crops_faces_and_records_bad_entries(cloud: Any) -> None:
    files = [
        ("team/astronaut.jpg", photos.jpeg(photos.astronaut())),
        ("team/rotated.jpg", photos.portrait_exif_rotated(6)),
        ("team/astronaut.jpg", photos.jpeg(photos.astronaut())),  # duplicate name
        ("team/../../evil.jpg", photos.jpeg(photos.camera())),
        ("team/wall.jpg", photos.face_free_jpeg()),
        ("team/broken.jpg", photos.truncated_jpeg()),
        ("team/empty.jpg", photos.empty()),
        ("__MACOSX/team/._astronaut.jpg", b"\0\5\26\7"),
        ("team/notes.txt", b"not a photo"),
    ]
    key = "uploads/headshots 2026.zip"
    _drop(cloud, key, photos.zip_of(files), **{"notify-email": "ops@example.com"})
    job = _job_for(key)
    assert job.kind == "crop" and job.total == len(files)
    done = wait_for(lambda: (j := jobs.get_job(job.job_id)).processed == j.total and j,
                    timeout=120, interval=0.5, what="crop job to finish")
    assert done.notify_email == "ops@example.com"
    items = {i.item_id: i for i in jobs.iter_items(job.job_id)}
    assert [items[i].status for i in range(len(files))] == [
        "succeeded", "succeeded", "succeeded", "succeeded", "succeeded", "failed", "failed", "skipped", "skipped"]
    assert items[0].extra["face_detected"] is True and items[1].extra["face_detected"] is True
    assert items[4].extra["face_detected"] is False  # no face: centre crop, not an error
    assert (items[5].error_code, items[6].error_code) == ("truncated", "empty")
    assert items[5].error and items[6].error  # and a message for people beside each code
    assert items[7].error_code == "macos_metadata" and items[7].error and "macos" in items[7].error.lower()
    # Duplicate and hostile names get distinct, safe keys.
    keys = [items[i].output_key or "" for i in range(5)]
    assert len(set(keys)) == 5 and all(".." not in k and k.startswith(f"outputs/default/{job.job_id}/") for k in keys)
    crop = Image.open(io.BytesIO(aws.client("s3").get_object(Bucket=cloud.refs.bucket, Key=keys[0])["Body"].read()))
    assert crop.size == (300, 300) and crop.format == "JPEG"
    # The same job through the API, with face results.
    status, body, _ = api(cloud, "GET", f"/api/jobs/{job.job_id}")
    assert status == 200 and body["kind"] == "crop"
    first = next(r for r in body["results"] if r["item_id"] == 0)
    assert first["face"]["face_detected"] is True
    assert Image.open(io.BytesIO(fetch(first["url"]))).size == (300, 300)


def test_non_zip_named_zip_fails_the_job(cloud: Any) -> None:
    key = "uploads/not-really.zip"
    _drop(cloud, key, b"this is plain text, not a zip archive" * 10)

    def failed() -> jobs.Job | None:
        found, _ = jobs.list_jobs(limit=100)
        return next((j for j in found if j.metadata.get("upload") == key and j.status == "failed"), None)

    job = wait_for(failed, timeout=60, interval=0.3, what="the job to fail")
    assert job.error and "zip" in job.error.lower()


def test_zip_bomb_is_refused_before_inflating(cloud: Any) -> None:
    key = "uploads/bomb.zip"
    _drop(cloud, key, photos.deflate_bomb_zip(size=300 * 1024 * 1024))

    def settled() -> jobs.Job | None:
        found, _ = jobs.list_jobs(limit=100)
        return next((j for j in found if j.metadata.get("upload") == key and j.total is not None), None)

    job = wait_for(settled, timeout=60, interval=0.3, what="the bomb job to settle")
    items = list(jobs.iter_items(job.job_id))
    assert job.status == "failed" or all(i.status == "failed" for i in items)
