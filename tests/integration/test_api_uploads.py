"""POST /api/uploads: the job first, then a presigned PUT whose S3 event starts the split."""

from __future__ import annotations

import io
import urllib.request
import zipfile
from typing import Any

import pytest

from posterflow import jobs
from tests.integration.helpers import api, upload_card_template, wait_for


@pytest.fixture(scope="module")
def template_id(cloud: Any) -> str:
    return upload_card_template(cloud, "upl", "<div style='font:18px sans-serif'>{{ username }} {{ score }}</div>",
                                name="Upload card")


def _put(upload: dict[str, Any], data: bytes) -> int:
    req = urllib.request.Request(upload["upload_url"], data=data, method=upload["method"], headers=upload["headers"])
    with urllib.request.urlopen(req, timeout=30) as resp:
        return int(resp.status)


def _final(job_id: str) -> jobs.Job:
    def done() -> jobs.Job | None:
        job = jobs.get_job(job_id)
        return job if job.is_final else None

    return wait_for(done, timeout=90, interval=0.3, what=f"job {job_id} to finish")


def test_csv_upload_attaches_to_the_job_with_its_output_options(cloud: Any, template_id: str) -> None:
    status, up, _ = api(cloud, "POST", "/api/uploads", {
        "kind": "poster", "filename": "scores.csv", "template_id": template_id, "format": "png",
        "notify_email": "ops@example.com"})
    assert status == 201, up
    assert up["headers"] == {"Content-Type": "text/csv"} and up["key"] == f"uploads/default/{up['job_id']}/scores.csv"
    assert up["status_endpoint"] == f"/api/templates/job/{up['job_id']}" and up["token"]
    assert up["websocket_url"].endswith(f"job_id={up['job_id']}&token={up['token']}")
    job = jobs.get_job(up["job_id"])
    assert job.status == "queued" and job.total is None and job.template_id == template_id.replace("_latest", "_v1")
    assert _put(up, b"username,score\nalice,1\nbob,=HYPERLINK(\"x\")\n") == 200
    job = _final(up["job_id"])
    assert (job.status, job.total, job.succeeded) == ("completed", 2, 2)
    items = {i.item_id: i for i in jobs.iter_items(job.job_id)}
    assert items[0].output_key and items[0].output_key.endswith(".png")  # the job's format, not the template's
    assert items[1].input and items[1].input["custom_data"]["score"] == '=HYPERLINK("x")'


def test_binary_csv_upload_fails_the_job_with_a_reason(cloud: Any, template_id: str) -> None:
    status, up, _ = api(cloud, "POST", "/api/uploads", {"filename": "data.csv", "template_id": template_id})
    assert status == 201, up
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("sheet.xml", "<x/>")
    assert _put(up, buf.getvalue()) == 200
    job = _final(up["job_id"])
    # Refused as not being text (the exact reason depends on the bytes the ZIP writer produced).
    assert job.status == "failed" and job.error and job.error.startswith("upload refused")


def test_zip_upload_becomes_a_crop_job(cloud: Any) -> None:
    status, up, _ = api(cloud, "POST", "/api/uploads", {"kind": "crop", "filename": "photos.zip"})
    assert status == 201, up
    assert up["headers"] == {"Content-Type": "application/zip"} and up["status_endpoint"] == f"/api/jobs/{up['job_id']}"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("notes.txt", "not a photo")
    assert _put(up, buf.getvalue()) == 200
    job = _final(up["job_id"])
    assert job.kind == "crop" and job.total == 1 and job.processed == 1


@pytest.mark.parametrize("payload", [
    {"kind": "poster", "filename": "../etc/passwd.csv", "template_id": "x_latest"},
    {"kind": "poster", "filename": "a b.csv", "template_id": "x_latest"},
    {"kind": "poster", "filename": "rows.xlsx", "template_id": "x_latest"},
    {"kind": "poster", "filename": "rows.csv"},
    {"kind": "crop", "filename": "photos.csv"},
    {"kind": "video", "filename": "clip.mp4"},
    {"filename": ""},
])
def test_bad_upload_requests_are_422(cloud: Any, payload: dict[str, Any]) -> None:
    status, body, _ = api(cloud, "POST", "/api/uploads", payload)
    assert status == 422 and body["error"]["code"] == "validation_error", body


def test_unknown_template_is_404_and_creates_no_job(cloud: Any) -> None:
    before, _ = jobs.list_jobs(limit=5)
    status, body, _ = api(cloud, "POST", "/api/uploads", {"filename": "a.csv", "template_id": "nope-nope_latest"})
    assert status == 404 and body["error"]["code"] == "template_not_found"
    after, _ = jobs.list_jobs(limit=5)
    assert [j.job_id for j in after] == [j.job_id for j in before]
