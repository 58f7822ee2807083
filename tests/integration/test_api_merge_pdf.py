"""``merge_pdf`` batches through the REST API on the local cloud: one merged print PDF of the
succeeded items in input order, in the results archive and as ``merged_pdf_url``; parts above
``POSTERFLOW_MERGED_PDF_PART_PAGES``; a non-PDF format refused."""

from __future__ import annotations

import io
import uuid
import zipfile
from typing import Any

import pytest
from pypdf import PdfReader

from posterflow import aws, config, jobs
from posterflow import resources as r
from posterflow.finalize import merge_pdf
from posterflow.resources import ResourceRefs
from tests.events import load_event
from tests.integration.helpers import api, fetch, wait_for

HTML = ("<html><body style='margin:0;background:#fff'><h1 style='font:28px sans-serif;margin:20px'>"
        "Dear {{ name }}</h1></body></html>")
WIDTH, HEIGHT = 384, 288  # CSS px: the PDF page is 288 x 216 pt


@pytest.fixture(scope="module")
def pdf_template(cloud: Any) -> str:
    section = f"mail-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": "Mailer", "html_content": HTML, "format": "pdf", "width": WIDTH,
        "height": HEIGHT})
    assert status == 201, body
    return f"{section}_latest"


def _finished(cloud: Any, job_id: str, timeout: float = 120) -> dict[str, Any]:
    def done() -> Any:
        _, body, _ = api(cloud, "GET", f"/api/jobs/{job_id}")
        return body if body["status"] in ("completed", "completed_with_errors", "failed") else None

    return dict(wait_for(done, timeout=timeout, interval=0.5, what=f"job {job_id} to finish"))


def _entered_states(job_id: str) -> list[str]:
    """The states the job's finalize execution entered, in order (its execution history)."""
    sfn = aws.client("stepfunctions")
    arn = config.state_machine_arn("finalize").replace(":stateMachine:", ":execution:")
    arn += f":{jobs.get_job(job_id).finalize_execution_name}"

    def ended() -> dict[str, Any] | None:
        described = sfn.describe_execution(executionArn=arn)
        return dict(described) if described["status"] != "RUNNING" else None

    execution = wait_for(ended, timeout=60, interval=0.2, what=f"finalize of {job_id}")
    assert execution["status"] == "SUCCEEDED", execution
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def _names(pdf: bytes) -> list[str]:
    return [" ".join((page.extract_text() or "").split()) for page in PdfReader(io.BytesIO(pdf)).pages]


def test_merged_pdf_has_the_succeeded_items_in_input_order(cloud: Any, pdf_template: str) -> None:
    names = ["Ada Lovelace", "Grace Hopper", None, "Alan Turing", "Edsger Dijkstra"]
    items = [{"name": n, "recipient_id": f"r{i}"} if n else {"recipient_id": f"r{i}"} for i, n in enumerate(names)]
    status, body, _ = api(cloud, "POST", "/api/generate-batch",
                          {"template_id": pdf_template, "items": items, "merge_pdf": True, "name": "spring mailing"})
    assert status == 202, body
    job = _finished(cloud, body["job_id"])
    assert job["status"] == "completed_with_errors" and job["success_count"] == 4 and job["failure_count"] == 1
    assert job["merge_pdf"] is True and job["merged_pdf_pages"] == 4 and len(job["merged_pdf_urls"]) == 1
    # The link is presigned, for the tenant's own archives/<tenant>/<job>/ prefix.
    assert f"/archives/default/{job['job_id']}/merged-001.pdf" in job["merged_pdf_url"]
    assert _entered_states(job["job_id"])[:3] == ["NeedsMergePdf", "MergePdf", "MergeDone"]

    merged = fetch(job["merged_pdf_url"])
    reader = PdfReader(io.BytesIO(merged))
    assert len(reader.pages) == 4
    assert _names(merged) == [f"Dear {n}" for n in names if n]
    for page in reader.pages:
        assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (WIDTH * 3 // 4,
                                                                                            HEIGHT * 3 // 4)

    # The finalize task again (events/finalize/task-input-merge-pdf.json): the part is recorded,
    # nothing is merged twice.
    result = cloud.runtime.invoke(r.stack_spec().function("finalize").name,
                                  load_event("finalize/task-input-merge-pdf", job_id=job["job_id"]))
    assert not result.failed and result.payload == {"done": True, "parts": 1}, result

    # The archive holds the merged PDF beside the items; the manifest lists the failed one.
    with zipfile.ZipFile(io.BytesIO(fetch(job["archive_url"]))) as zf:
        assert zf.read("merged.pdf") == merged
        manifest = zf.read("manifest.csv").decode()
    failed = [line for line in manifest.splitlines() if ",r2," in line]
    assert len(failed) == 1 and "failed" in failed[0] and "missing_placeholders" in failed[0]

    # A retry of the failed item is a new finalize round with its own merged PDF.
    status, body, _ = api(cloud, "POST", f"/api/jobs/{job['job_id']}/retry")
    assert status == 200 and body["retried"] == 1, body

    def next_round() -> Any:
        _, b, _ = api(cloud, "GET", f"/api/jobs/{job['job_id']}")
        return b if b["status"] == "completed_with_errors" and b["merged_pdf_urls"] else None

    again = wait_for(next_round, timeout=120, interval=0.5, what="the retry round's merged PDF")
    assert f"/archives/default/{job['job_id']}/merged-r1-001.pdf" in again["merged_pdf_url"]
    assert _names(fetch(again["merged_pdf_url"])) == [f"Dear {n}" for n in names if n]


def test_a_job_above_the_part_size_gets_parts(cloud: Any, pdf_template: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTERFLOW_MERGED_PDF_PART_PAGES", "2")  # the finalize function reads it at run time
    items = [{"name": f"Person {i}"} for i in range(3)]
    status, body, _ = api(cloud, "POST", "/api/generate-batch",
                          {"template_id": pdf_template, "items": items, "merge_pdf": True})
    assert status == 202, body
    job = _finished(cloud, body["job_id"])
    assert job["status"] == "completed" and job["merged_pdf_pages"] == 3
    assert job["merged_pdf_url"] is None and len(job["merged_pdf_urls"]) == 2
    parts = [_names(fetch(url)) for url in job["merged_pdf_urls"]]
    assert parts == [["Dear Person 0", "Dear Person 1"], ["Dear Person 2"]]
    with zipfile.ZipFile(io.BytesIO(fetch(job["archive_url"]))) as zf:
        assert {"merged-001.pdf", "merged-002.pdf"} <= set(zf.namelist())


def test_merge_pdf_needs_pdf_output(cloud: Any, pdf_template: str) -> None:
    status, body, _ = api(cloud, "POST", "/api/generate-batch",
                          {"template_id": pdf_template, "items": [{"name": "x"}], "merge_pdf": True, "format": "png"})
    assert status == 422, body
    assert body["error"]["code"] == "merge_pdf_needs_pdf" and body["error"]["details"]["format"] == "png"
    assert "png" in body["error"]["message"]


def test_jobs_without_merge_pdf_have_no_merged_fields(cloud: Any, pdf_template: str) -> None:
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {"template_id": pdf_template, "items": [{"name": "x"}]})
    assert status == 202, body
    job = _finished(cloud, body["job_id"])
    assert job["status"] == "completed" and "merged_pdf_url" not in job
    # One Lambda invocation fewer per finalize: the first Choice skips the MergePdf task.
    entered = _entered_states(job["job_id"])
    assert entered[:2] == ["NeedsMergePdf", "BuildArchive"] and "MergePdf" not in entered


def test_bulk_csv_with_merge_pdf(cloud: Any, pdf_template: str) -> None:
    csv_text = "name,city\nAda,London\nBob,Rome,extra\nGrace,New York\n"  # the second row fails (extra cell)
    status, body, _ = api(cloud, "POST", "/api/generate-bulk", {
        "bulkMethod": "csv", "csvData": csv_text, "template_id": pdf_template, "mergePdf": True})
    assert status == 202, body
    job = _finished(cloud, body["job_id"])
    assert job["success_count"] == 2 and job["merged_pdf_pages"] == 2
    assert _names(fetch(job["merged_pdf_url"])) == ["Dear Ada", "Dear Grace"]
    status, body, _ = api(cloud, "POST", "/api/generate-bulk", {
        "bulkMethod": "csv", "csvData": csv_text, "template_id": pdf_template, "merge_pdf": True, "format": "jpeg"})
    assert status == 422 and body["error"]["code"] == "merge_pdf_needs_pdf", body


def test_a_missing_item_pdf_fails_the_merge_rather_than_leaving_it_out(aws_stack: ResourceRefs) -> None:
    now = "2025-01-01T00:00:00.000000Z"
    gone = jobs.Item(job_id="j", item_id=0, entity_id="e0", status=jobs.ItemStatus.SUCCEEDED,
                     output_key=f"outputs/default/missing-{uuid.uuid4().hex}/000000.pdf", created_at=now,
                     updated_at=now)
    with pytest.raises(merge_pdf.MergeError, match="output of item 0 is missing"):
        merge_pdf.merge_part([gone], f"archives/default/t-{uuid.uuid4().hex}/merged-001.pdf", part=1, max_pages=10)
