"""posterflow-client against the local cloud, the API's newer calls: ``priority`` and the
``project_id`` listing, canvas templates, ``generate_batch(mode=, merge_pdf=)`` (an inline batch
needs no polling), ``batch.upload_zip`` (and its size limit), ``jobs.logs`` / ``jobs.results``
filtered, ``stats.templates`` / ``stats.crops``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from posterflow_client import (
    Client,
    Conflict,
    NotFound,
    PayloadTooLarge,
    ValidationFailed,
    VariableMapping,
    ZipTooLarge,
    ZipUpload,
)

from tests import photos
from tests.integration.helpers import fetch, wait_for

HTML = "<div style='font:16px sans-serif;background:#234;color:#fff;height:100px'>Hi {{ name }}</div>"
PDF_HTML = "<html><body style='margin:0'><h1 style='font:28px sans-serif'>Dear {{ name }}</h1></body></html>"
OUT: dict[str, Any] = {"format": "jpeg", "width": 200, "height": 100}
JPEG, PNG, PDF = b"\xff\xd8\xff", b"\x89PNG", b"%PDF"
EVENTS = Path(__file__).resolve().parents[2] / "events" / "templates"
PHOTO = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJ"
         "RU5ErkJggg==")


class Recording(httpx.BaseTransport):
    """The real local cloud, with every request kept (method, path)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.sent: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.method, request.url.path))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(scope="module")
def api_key() -> str:
    return f"pyjobs-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def recording() -> Recording:
    return Recording()


@pytest.fixture(scope="module")
def pf(cloud: Any, api_key: str, recording: Recording) -> Iterator[Client]:
    with Client(cloud.gateway.rest_url, api_key=api_key, timeout=60, transport=recording) as client:
        yield client


@pytest.fixture(scope="module")
def template_id(pf: Client) -> str:
    section = f"pyj-{uuid.uuid4().hex[:6]}"
    pf.templates.upload(section, "Client card", HTML, **OUT)
    return f"{section}_latest"


@pytest.fixture(scope="module")
def pdf_template(pf: Client) -> str:
    section = f"pyjpdf-{uuid.uuid4().hex[:6]}"
    pf.templates.upload(section, "Mailer", PDF_HTML, format="pdf", width=384, height=288)
    return f"{section}_latest"


def _zip() -> bytes:
    return photos.zip_of([("team/astronaut.jpg", photos.jpeg(photos.astronaut())),
                          ("team/wall.jpg", photos.face_free_jpeg()), ("team/notes.txt", b"not a photo")])


def test_priority_on_job_creating_calls_and_its_lane(pf: Client, template_id: str, tmp_path: Path) -> None:
    urgent = pf.generate_async(template_id, {"name": "Now"}, priority=2, **OUT)
    normal = pf.generate_batch(template_id, [{"name": "A"}, {"name": "B"}], priority=9, **OUT)
    rows = tmp_path / "rows.csv"
    rows.write_text("name\nAnn\n", encoding="utf-8")
    uploaded = pf.upload_csv(rows, template_id, priority=1, **OUT)
    for job, priority, lane in ((urgent, 2, "urgent"), (normal, 9, "normal"), (uploaded, 1, "urgent")):
        done = pf.wait(job, timeout=120, poll_interval=0.2)
        assert done.status == "completed", done
        assert (done.priority, done.lane) == (priority, lane)
    plain = pf.wait(pf.generate_async(template_id, {"name": "Whenever"}, **OUT), timeout=120, poll_interval=0.2)
    assert (plain.priority, plain.lane) == (None, "normal")
    with pytest.raises(ValidationFailed) as caught:
        pf.generate_batch(template_id, [{"name": "x"}], priority=11)
    assert caught.value.status == 422 and caught.value.code == "validation_error"
    assert any("priority" in d["loc"] for d in caught.value.details)


def test_generate_bulk_rows_with_priority_and_merge_pdf(pf: Client, template_id: str, pdf_template: str) -> None:
    job = pf.generate_bulk(csv_data=[{"name": "Ann", "entity_id": "a"}, {"name": "Bo", "entity_id": "b"}],
                           template_id=template_id, priority=3, name="bulk rows", **OUT)
    assert (job.total_items, job.queued_items, job.failed_items) == (2, 2, 0)
    done = pf.wait(job, timeout=120, poll_interval=0.2)
    assert done.status == "completed" and (done.priority, done.lane) == (3, "urgent")
    assert sorted(r.entity_id or "" for r in done.results) == ["a", "b"]
    text = pf.generate_bulk(csv_data="name,extra\nGrace,x\nAda,y\n", csv_columns=["name"],
                            template_id=pdf_template, merge_pdf=True)
    merged = pf.wait(text, timeout=120, poll_interval=0.2)
    assert merged.status == "completed" and merged.merged_pdf_pages == 2 and merged.merged_pdf_url
    inline = pf.wait(pf.generate_bulk(csv_data=[["name"], ["Inline"]], template_html=HTML, **OUT), timeout=120,
                     poll_interval=0.2)
    assert inline.status == "completed" and inline.template_section and inline.template_section.startswith("inline-")
    with pytest.raises(ValueError):
        pf.generate_bulk(template_id=template_id)


def test_batch_upload_zip_then_list_by_project(pf: Client, tmp_path: Path) -> None:
    project = f"proj-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "team photos.zip"
    path.write_bytes(_zip())
    up = pf.batch.upload_zip(path, project_id=project, priority=3)
    assert isinstance(up, ZipUpload) and up.job_id and up.batch_id == up.job_id
    assert (up.image_count, up.queued, up.entries, up.skipped) == (2, 2, 3, 1)
    assert (up.project_id, up.priority, up.lane) == (project, 3, "urgent")
    assert up.token and up.status_endpoint == f"/api/batch/status/{up.job_id}"
    from_bytes = pf.batch.upload_zip(_zip(), filename="again.zip", project_id=project)
    assert from_bytes.key and from_bytes.key.endswith("/again.zip")
    other = pf.batch.upload_zip(_zip(), project_id=f"{project}-other")
    for job in (up, from_bytes, other):
        done = pf.wait(job, timeout=180, poll_interval=0.3)
        assert done.status in ("completed", "completed_with_errors"), done
    assert done.kind == "crop" and any(r.url for r in done.results)
    listed = [j.job_id for j in pf.iter_jobs(project_id=project, page_size=1)]  # short pages are followed
    assert listed == [from_bytes.job_id, up.job_id]  # newest first, the other project left out
    assert [j.project_id for j in pf.jobs.list(project_id=project)] == [project, project]
    with pytest.raises(ValidationFailed) as bad:
        pf.batch.upload_zip(b"PK\x05\x06" + b"\0" * 18 + b"not really", project_id=project)
    assert bad.value.code in ("invalid_zip", "no_photos")
    with pytest.raises(ValidationFailed) as no_photos:
        pf.batch.upload_zip(photos.zip_of([("readme.txt", b"hello")]))
    assert no_photos.value.code == "no_photos"


def test_batch_add_images_and_status(cloud: Any, pf: Client, api_key: str) -> None:
    from posterflow import aws, tenancy
    from posterflow_local.apigw import _api_key_id

    tenant = tenancy.normalise(_api_key_id(api_key) or tenancy.DEFAULT_TENANT)
    keys = []
    for name, data in (("astronaut.jpg", photos.jpeg(photos.astronaut())), ("wall.jpg", photos.face_free_jpeg())):
        key = f"uploads/{tenant}/pyc-{uuid.uuid4().hex[:8]}/{name}"
        aws.client("s3").put_object(Bucket=cloud.refs.bucket, Key=key, Body=data)
        keys.append(key)
    project, batch_id = f"proj-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:10]}"
    job = pf.batch.add_images([keys[0], {"key": keys[1], "id": "wall"}], batch_id=batch_id, project_id=project,
                              priority=2, options={"size": 128, "format": "webp"})
    assert job.job_id == batch_id
    again = pf.batch.add_images([keys[0], {"key": keys[1], "id": "wall"}], batch_id=batch_id, project_id=project,
                                priority=2, options={"size": 128, "format": "webp"})
    assert again.job_id == batch_id  # the caller's batch id: a repeat is the same batch
    with pytest.raises(Conflict):
        pf.batch.add_images([keys[0]], batch_id=batch_id)
    done = pf.wait(job, timeout=180, poll_interval=0.3)
    assert done.status in ("completed", "completed_with_errors") and (done.project_id, done.lane) == (project, "urgent")
    assert {r.entity_id for r in done.results} == {keys[0], "wall"}
    status = pf.batch.status(batch_id)
    assert status.batch_id == batch_id and status.is_final and status.priority == 2 and status.image_count == 2
    assert status.progress.total == 2 and status.progress.processed == 2
    assert status.results_endpoint == f"/api/jobs/{batch_id}"
    with pytest.raises(NotFound) as missing:
        pf.batch.status(f"nope-{uuid.uuid4().hex[:6]}")
    assert missing.value.code == "batch_not_found"


def test_upload_zip_over_the_limit_names_the_presigned_upload(pf: Client, recording: Recording,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    data = _zip()
    before = len(recording.sent)
    with pytest.raises(ZipTooLarge) as refused:
        pf.batch.upload_zip(data, max_bytes=1000)  # the client's check: nothing is sent
    assert len(recording.sent) == before
    assert isinstance(refused.value, PayloadTooLarge) and refused.value.status == 413
    assert refused.value.max_bytes == 1000 and refused.value.size_bytes and refused.value.size_bytes > 1000
    assert "client.upload_zip" in str(refused.value) and "POST /api/uploads" in str(refused.value)
    # The server's own limit (the API runs in this process): its 413 is the same error.
    monkeypatch.setenv("POSTERFLOW_UPLOAD_ZIP_MAX_BYTES", "2048")
    with pytest.raises(ZipTooLarge) as server:
        pf.batch.upload_zip(data, max_bytes=None)
    assert server.value.code == "payload_too_large" and server.value.max_bytes == 2048
    assert "client.upload_zip" in server.value.message and "POST /api/uploads" in server.value.message
    assert recording.sent[-1] == ("POST", "/api/batch/upload-zip")
    monkeypatch.delenv("POSTERFLOW_UPLOAD_ZIP_MAX_BYTES")
    # The presigned path takes it.
    big = pf.upload_zip(_write(data), priority=5)
    assert pf.wait(big, timeout=180, poll_interval=0.3).status in ("completed", "completed_with_errors")


def _write(data: bytes) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "big.zip"
    path.write_bytes(data)
    return path


def test_canvas_template_upload_update_get_and_render(pf: Client) -> None:
    body = json.loads((EVENTS / "postcard.fabric6.json").read_text())
    section = f"pyc-canvas-{uuid.uuid4().hex[:6]}"
    tv = pf.templates.upload(section, "Postcard", canvas_json=body["canvas_json"], width=900, height=600,
                             variable_mappings=body["variable_mappings"], format="png")
    assert tv.kind == "canvas" and tv.template_id == f"{section}_v1" and (tv.width, tv.height) == (900, 600)
    assert {p["name"] for p in tv.placeholders} >= {"name", "address", "offer_url", "photo"}
    got = pf.templates.get(section)
    assert got.canvas_json == body["canvas_json"] and got.html_content is None
    assert [(m.index, m.field, m.type) for m in got.variable_mappings] == [
        (2, "name", "text"), (3, "address", "text"), (4, "offer_url", "qr"), (5, "photo", "image")]
    # A new version with only new mappings keeps the canvas (typed mappings are accepted too).
    fewer = [m for m in got.variable_mappings if m.type != "qr"]
    v2 = pf.templates.update(f"{section}_latest", variable_mappings=fewer, set_as_active=False)
    assert v2.version == 2 and v2.kind == "canvas" and not v2.is_active
    assert [m.index for m in pf.templates.get(f"{section}_v2").variable_mappings] == [2, 3, 5]
    data = {"name": "Ada Lovelace", "address": "12 Rue de la Paix\n75002 Paris", "offer_url": "https://example.com/o/1",
            "photo": PHOTO, "first_name": "Ada", "offer_code": "SPRING", "expires": "June 30"}
    poster = pf.generate(f"{section}_v1", data)
    assert poster.template_version_used == 1 and fetch(poster.url)[:4] == PNG
    with pytest.raises(ValidationFailed) as bad:
        pf.templates.upload(section, "Bad", kind="canvas", canvas_json=body["canvas_json"], width=900, height=600,
                            variable_mappings=[*got.variable_mappings, VariableMapping(index=99, field="zip")])
    assert bad.value.code == "mapping_invalid" and "index out of range" in bad.value.message
    with pytest.raises(ValidationFailed) as missing:
        pf.templates.upload(section, "No size", canvas_json=body["canvas_json"])
    assert missing.value.details == {"missing": ["width", "height"]}


def test_inline_batch_returns_a_finished_job_without_polling(pf: Client, pdf_template: str,
                                                            recording: Recording) -> None:
    items = [{"recipient_id": f"r{i}", "name": n} for i, n in enumerate(["Ada", "Grace", "Alan"])]
    before = len(recording.sent)
    job = pf.generate_batch(pdf_template, items, mode="auto", merge_pdf=True)
    assert recording.sent[before:] == [("POST", "/api/generate-batch")]  # one request, no polling
    assert job.inline is True and job.mode == "auto" and job.is_rendered
    assert job.total_items == 3 and job.success_count == 3 and len(job.results) == 3
    assert sorted(r.entity_id or "" for r in job.results) == ["r0", "r1", "r2"]
    assert all(r.status == "completed" and r.url for r in job.results)
    assert fetch(job.results[0].url or "")[:4] == PDF
    assert job.merge_pdf is True and job.merged_pdf_url and job.merged_pdf_urls == [job.merged_pdf_url]
    assert job.merged_pdf_pages == 3 and fetch(job.merged_pdf_url)[:4] == PDF
    done = pf.wait(job, timeout=60, poll_interval=0.2)
    assert done.is_final and len(done.results) == 3
    if job.is_final:  # finalize may still be sending mail/webhook when the 200 is written
        assert done is job


def test_sync_mode_limit_and_merge_pdf_needs_pdf(pf: Client, template_id: str, pdf_template: str) -> None:
    with pytest.raises(ValidationFailed) as too_many:
        pf.generate_batch(pdf_template, [{"name": f"N{i}"} for i in range(26)], mode="sync")
    assert too_many.value.code == "sync_batch_too_large" and too_many.value.details["limit"] == 25
    with pytest.raises(ValidationFailed) as not_pdf:
        pf.generate_batch(template_id, [{"name": "x"}], merge_pdf=True, **OUT)
    assert not_pdf.value.code == "merge_pdf_needs_pdf" and not_pdf.value.details["format"] == "jpeg"
    # async (the default) with merge_pdf: the merged PDF is on the finished job.
    job = pf.generate_batch(pdf_template, [{"name": "Ada"}, {"name": "Grace"}], merge_pdf=True)
    assert job.mode == "async" and not job.inline
    done = pf.wait(job, timeout=120, poll_interval=0.3)
    assert done.status == "completed" and done.merged_pdf_pages == 2 and len(done.merged_pdf_urls) == 1
    assert done.merged_pdf_url == done.merged_pdf_urls[0] and fetch(done.merged_pdf_url)[:4] == PDF


def test_logs_and_results_filtered(pf: Client, template_id: str) -> None:
    items = [{"name": "Ok 1", "entity_id": "ok1"}, {"entity_id": "bad1"}, {"name": "Ok 2", "entity_id": "ok2"},
             {"entity_id": "bad2"}]
    done = pf.wait(pf.generate_batch(template_id, items, **OUT), timeout=120, poll_interval=0.2)
    assert done.status == "completed_with_errors" and done.failure_count == 2
    failed = pf.job(done, status="failed")
    assert sorted(r.entity_id or "" for r in failed.results) == ["bad1", "bad2"]
    assert all(r.error_code == "missing_placeholders" for r in failed.results)
    assert [r.entity_id for r in pf.jobs.results(done, status="failed", page_size=1)] == [
        r.entity_id for r in failed.results]
    assert sorted(r.entity_id or "" for r in pf.jobs.get(done.job_id, status="succeeded").results) == ["ok1", "ok2"]
    lines = list(pf.jobs.logs(done))
    assert len(lines) >= 3 and {line.level for line in lines} >= {"INFO", "ERROR"}
    stamps = [line.timestamp or "" for line in lines]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    errors = list(pf.jobs.logs(done, level="error", page_size=1))  # pages of one, followed
    assert errors == [line for line in lines if line.level == "ERROR"]
    assert list(pf.jobs.logs(done, limit=2, page_size=1)) == lines[:2]
    with pytest.raises(ValidationFailed) as bad_level:
        list(pf.jobs.logs(done, level="LOUD"))
    assert bad_level.value.code == "invalid_level"
    with pytest.raises(ValidationFailed) as bad_status:
        pf.job(done, status="exploded")
    assert bad_status.value.code == "invalid_status"
    with pytest.raises(NotFound):
        list(pf.jobs.logs(f"no-such-job-{uuid.uuid4().hex[:6]}"))


def test_stats_templates_and_crops(cloud: Any) -> None:
    with Client(cloud.gateway.rest_url, api_key=f"pystats-{uuid.uuid4().hex[:8]}", timeout=60) as pf:
        section = f"pys-{uuid.uuid4().hex[:6]}"
        pf.templates.upload(section, "Stats card", HTML, **OUT)
        done = pf.wait(pf.generate_batch(f"{section}_latest", [{"name": "A"}, {"name": "B"}, {}], **OUT),
                       timeout=120, poll_interval=0.2)
        assert done.status == "completed_with_errors"
        stats = wait_for(lambda: (lambda s: s if s.sections and s.sections[0].jobs == 1 else None)(
            pf.stats.templates(section)), timeout=30, interval=0.2, what="the template stats")
        today = datetime.now(UTC).date()
        assert stats.until == today.isoformat() and stats.since == (today - timedelta(days=29)).isoformat()
        (one,) = stats.sections
        assert (one.section, one.jobs, one.items, one.succeeded, one.failed) == (section, 1, 3, 2, 1)
        assert one.generation_ms.avg and one.generation_ms.min and one.generation_ms.p95
        assert one.avg_job_duration_ms is not None and [v.version for v in one.versions] == [1]
        assert pf.stats.templates(since=today, until=datetime.now(UTC)).sections == stats.sections
        assert pf.stats.templates(section, since="2020-01-01", until=date(2020, 1, 31)).sections == []
        with pytest.raises(ValidationFailed) as bad:
            pf.stats.templates(since="2026/01/01")
        assert bad.value.code == "invalid_date" and bad.value.details["format"] == "YYYY-MM-DD"
        assert pf.stats.crops().crops.jobs == 0
        crop = pf.wait(pf.batch.upload_zip(_zip()), timeout=180, poll_interval=0.3)
        assert crop.status in ("completed", "completed_with_errors"), crop
        crops = wait_for(lambda: (lambda s: s if s.crops.jobs == 1 else None)(pf.stats.crops()),
                         timeout=30, interval=0.2, what="the crop stats").crops
        assert crops.succeeded == crop.success_count >= 1 and crops.items >= crops.succeeded
        assert crops.faces_found >= 1
        assert crops.crop_ms.avg and crops.avg_job_duration_ms is not None
        with pytest.raises(ValidationFailed):
            pf.stats.crops(since="2024-01-01", until="2026-01-01")  # over 366 days
