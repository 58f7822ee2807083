"""A ``merge_pdf`` batch's merged PDF in what the job's end sends out, on the local cloud: the
webhook body and the results e-mail carry signed download links of its parts (the download
route with ``&part=N``, never an S3 key), and the ``job_completed`` frame of the job's stream
carries presigned links as the job status does."""

from __future__ import annotations

import io
import json
import urllib.request
import uuid
from typing import Any

import pytest
from pypdf import PdfReader

from posterflow import jobs
from tests.integration.helpers import api, fetch
from tests.integration.test_finalize_workflow import (
    Receiver,
    get_no_redirect,
    mails_for,
    parts,
    receiver,
    wait_finalized,
)
from tests.integration.test_sse_streams import parse

__all__ = ["receiver"]  # a fixture shared with the finalize tests

HTML = ("<html><body style='margin:0;background:#fff'><h1 style='font:28px sans-serif;margin:20px'>"
        "Dear {{ name }}</h1></body></html>")


@pytest.fixture(scope="module")
def pdf_template(cloud: Any) -> str:
    section = f"mnote-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": "Mailer", "html_content": HTML, "format": "pdf", "width": 384, "height": 288})
    assert status == 201, body
    return f"{section}_latest"


def _batch(cloud: Any, template_id: str, receiver: Receiver, hook: str, **extra: Any) -> jobs.Job:
    items = [{"name": n} for n in ("Ada", "Grace", "Alan")]
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {
        "template_id": template_id, "items": items, "notify_email": "ops@example.com",
        "webhook_url": receiver.url + hook, **extra})
    assert status == 202, body
    assert wait_finalized(body["job_id"])["status"] == "SUCCEEDED"
    return jobs.get_job(body["job_id"])


def _pages(link: str) -> int:
    status, headers, _ = get_no_redirect(link)
    assert status == 302, status
    return len(PdfReader(io.BytesIO(fetch(headers["Location"]))).pages)


def _job_completed_frame(cloud: Any, job: jobs.Job) -> dict[str, Any]:
    # The job has ended: its stream sends the whole log at once and closes.
    req = urllib.request.Request(f"{cloud.gateway.rest_url}/api/templates/job/{job.job_id}/stream?token={job.token}",
                                 headers={"Accept": "text/event-stream"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        events, _ = parse(resp.read().decode())
    (end,) = [e.data for e in events if e.event == "job_completed"]
    return end


def test_webhook_mail_and_stream_carry_the_merged_pdf(cloud: Any, pdf_template: str, receiver: Receiver) -> None:
    hook = f"/merged/{uuid.uuid4().hex[:8]}"
    job = _batch(cloud, pdf_template, receiver, hook, merge_pdf=True)
    assert job.status == jobs.JobStatus.COMPLETED

    ((_, raw),) = receiver.posts(hook)
    body = json.loads(raw)
    (link,) = body["merged_pdf_urls"]
    assert body["merged_pdf_url"] == link
    # A signed link of the API (it outlives the finalize function's credentials), not S3's.
    assert f"/api/jobs/{job.job_id}/download?token=" in link and link.endswith("&part=1")
    assert link.split("&part=")[0] == body["results_url"].split("&")[0]
    assert "archives/" not in raw.decode()
    assert _pages(link) == 3

    (msg,) = mails_for(cloud, job.job_id)
    text, html = parts(msg)
    assert f"Merged PDF: {link}" in text
    assert f'href="{link.replace("&", "&amp;")}"' in html and ">Merged PDF</a>" in html

    end = _job_completed_frame(cloud, job)
    (frame_link,) = end["merged_pdf_urls"]
    assert end["merged_pdf_url"] == frame_link
    assert f"/archives/default/{job.job_id}/merged-001.pdf" in frame_link and "Signature=" in frame_link
    assert "_merged_pdf_keys" not in end
    assert len(PdfReader(io.BytesIO(fetch(frame_link))).pages) == 3

    # The download route refuses parts the job does not have.
    token = link.split("token=")[1].split("&")[0]
    status, err, _ = api(cloud, "GET", f"/api/jobs/{job.job_id}/download?token={token}&part=2")
    assert status == 404 and err["error"]["code"] == "no_archive" and "1 part(s)" in err["error"]["message"]


def test_jobs_without_merge_pdf_send_no_merged_fields(cloud: Any, pdf_template: str, receiver: Receiver) -> None:
    hook = f"/plain/{uuid.uuid4().hex[:8]}"
    job = _batch(cloud, pdf_template, receiver, hook)
    ((_, raw),) = receiver.posts(hook)
    body = json.loads(raw)
    assert body["results_url"] and "merged_pdf_url" not in body and "merged_pdf_urls" not in body
    text, _ = parts(mails_for(cloud, job.job_id)[0])
    assert "Merged PDF" not in text
    assert "merged_pdf_urls" not in _job_completed_frame(cloud, job)
    token = body["results_url"].split("token=")[1]
    status, err, _ = api(cloud, "GET", f"/api/jobs/{job.job_id}/download?token={token}&part=1")
    assert status == 404 and err["error"]["code"] == "no_archive"
