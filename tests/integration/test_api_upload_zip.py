"""``POST /api/batch/upload-zip`` on the local cloud: seed 004's ``curl -F`` upload and status
poll run unchanged, every bad input is a 4xx in the error shape that leaves nothing behind, and
``GET /api/jobs?project_id=`` lists one project's jobs across pages."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from posterflow import aws, jobs, tenancy
from posterflow import resources as r
from posterflow_local.apigw import _api_key_id
from tests import photos
from tests.integration.helpers import api, wait_for

ROUTE = "/api/batch/upload-zip"
FINAL = ("completed", "completed_with_errors", "failed", "cancelled")


def _curl(*args: str, cwd: Path) -> tuple[int, Any]:
    """curl as the seed runs it; returns (HTTP status, parsed JSON body)."""
    out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *args], cwd=cwd, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    body, _, status = out.rpartition("\n")
    return int(status), json.loads(body)


def _tenant(key: str) -> str:
    return tenancy.normalise(_api_key_id(key) or tenancy.DEFAULT_TENANT)


def _uploads_of(cloud: Any, tenant: str) -> list[str]:
    found = aws.client("s3").list_objects_v2(Bucket=cloud.refs.bucket, Prefix=f"uploads/{tenant}/")
    return [o["Key"] for o in found.get("Contents", [])]


def _small_face_free_jpeg() -> bytes:
    from PIL import Image

    return photos.encode(Image.new("RGB", (64, 48), (120, 160, 200)), "JPEG")


def _with_a_flipped_byte(data: bytes, name: str) -> bytes:
    """The ZIP with one byte in the middle of ``name``'s compressed data inverted."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)  # the local header's
    at = info.header_offset + 30 + name_len + extra_len + info.compress_size // 2
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


def test_seed_004_curl_upload_then_status_poll(cloud: Any, tmp_path: Path) -> None:
    files = [
        ("team/astronaut.jpg", photos.jpeg(photos.astronaut())),
        ("team/wall.jpg", photos.face_free_jpeg()),
        ("team/broken.jpg", photos.truncated_jpeg()),
        ("team/flipped.jpg", photos.jpeg(photos.camera())),  # its data damaged inside the ZIP
        ("team/", b""),
        ("team/notes.txt", b"not a photo"),
        ("__MACOSX/team/._astronaut.jpg", b"\0\5\26\7"),
    ]
    (tmp_path / "photos.zip").write_bytes(_with_a_flipped_byte(photos.zip_of(files), "team/flipped.jpg"))
    base = cloud.gateway.rest_url
    # Seed 004, "Upload ZIP with 1000 Photos", with this cloud's address.
    status, body = _curl("-X", "POST", f"{base}/api/batch/upload-zip", "-F", "file=@photos.zip",
                         "-F", "projectId=proj-123", "-F", "priority=5", cwd=tmp_path)
    assert status == 202, body
    assert body["success"] is True and body["batchId"] == body["job_id"]
    # Four photos (two of them broken: their items fail at the worker), all four queued.
    assert (body["imageCount"], body["queued"], body["entries"], body["skipped"]) == (4, 4, 7, 3)
    assert body["status_endpoint"] == f"/api/batch/status/{body['batchId']}"
    assert body["websocket_url"] and body["token"] and body["project_id"] == "proj-123" and body["priority"] == 5
    assert body["key"] == f"uploads/default/{body['job_id']}/photos.zip"

    # Seed 004, "Monitor Progress", until the batch is done.
    def batch() -> dict[str, Any] | None:
        got, answer = _curl(f"{base}/api/batch/status/{body['batchId']}", cwd=tmp_path)
        assert got == 200, answer
        return answer if answer["batch"]["status"] in FINAL else None

    done = wait_for(batch, timeout=120, interval=0.5, what="the batch to finish")
    assert done["success"] is True
    b = done["batch"]
    assert b["batchId"] == body["batchId"] and b["status"] == "completed_with_errors"
    assert b["imageCount"] == body["imageCount"] == 4  # the photos; progress counts every entry
    assert b["progress"] == {"processed": 7, "total": 7, "failed": 2, "succeeded": 2, "skipped": 3, "cancelled": 0}
    assert b["progressPercent"] == 100

    # The same job: the project and priority kept, every entry an item with its reason.
    got, job, _ = api(cloud, "GET", f"/api/jobs/{body['job_id']}")
    assert got == 200 and job["kind"] == "crop" and job["project_id"] == "proj-123"
    assert job["priority"] == 5 and job["lane"] == "normal" and job["metadata"]["source"] == "upload-zip"
    codes = {r["entity_id"]: (r["status"], r["error_code"]) for r in job["results"]}
    assert codes["team/astronaut.jpg"] == ("completed", None)
    assert codes["team/broken.jpg"] == ("failed", "truncated")
    assert codes["team/flipped.jpg"][0] == "failed" and codes["team/flipped.jpg"][1] in ("crc_mismatch",
                                                                                           "corrupt_entry")
    assert codes["team/notes.txt"][0] == "skipped" and codes["__MACOSX/team/._astronaut.jpg"][0] == "skipped"


def _form(tmp_path: Path, **parts: bytes | str) -> list[str]:
    """curl -F arguments: bytes become a file of that name, str a plain field."""
    args: list[str] = []
    for name, value in parts.items():
        if isinstance(value, bytes):
            (tmp_path / f"{name}.zip").write_bytes(value)
            args += ["-F", f"{name}=@{name}.zip"]
        else:
            args += ["-F", f"{name}={value}"]
    return args


_PHOTO_ZIP = photos.zip_of([("a.jpg", b"\xff\xd8 not decoded by the API")])
_TRUNCATED_ZIP = photos.zip_of([("a.jpg", b"x" * 2000), ("b.jpg", b"y" * 2000)])[:-30]

RANGE = "from 1 (most urgent) to 10"  # the 422 names the range
BAD: dict[str, tuple[dict[str, bytes | str], int, str, str]] = {
    # name: (form, status, code, words the message must hold)
    "missing-file": ({"projectId": "p"}, 422, "missing_file", "-F file=@"),
    "empty-file": ({"file": b""}, 422, "missing_file", "empty"),
    "not-a-zip": ({"file": b"just some text, not an archive" * 4}, 422, "invalid_zip", "not a usable ZIP"),
    "corrupt-zip": ({"file": _TRUNCATED_ZIP}, 422, "invalid_zip", "not a usable ZIP"),
    "no-photos": ({"file": photos.zip_of([("notes.txt", b"hello"), ("docs/", b"")])}, 422, "no_photos", "no photos"),
    "priority-word": ({"file": _PHOTO_ZIP, "priority": "high"}, 422, "validation_error", RANGE),
    "priority-decimal": ({"file": _PHOTO_ZIP, "priority": "5.5"}, 422, "validation_error", RANGE),
    "priority-high": ({"file": _PHOTO_ZIP, "priority": "11"}, 422, "validation_error", RANGE),
    "priority-zero": ({"file": _PHOTO_ZIP, "priority": "0"}, 422, "validation_error", RANGE),
    "priority-arabic-digit": ({"file": _PHOTO_ZIP, "priority": "\u0665"}, 422, "validation_error", RANGE),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_form_is_a_4xx_and_leaves_nothing_behind(cloud: Any, tmp_path: Path, case: str) -> None:
    form, want_status, code, words = BAD[case]
    key = f"upload-zip-bad-{uuid.uuid4().hex[:8]}"
    status, body = _curl("-X", "POST", f"{cloud.gateway.rest_url}{ROUTE}", "-H", f"x-api-key: {key}",
                         *_form(tmp_path, **form), cwd=tmp_path)
    assert status == want_status, body
    assert body["error"]["code"] == code and words in body["error"]["message"], body
    if code == "invalid_zip":
        assert body["error"]["details"]["reason"]
    got, listing, _ = api(cloud, "GET", "/api/jobs", headers={"x-api-key": key})
    assert got == 200 and listing["jobs"] == []
    assert _uploads_of(cloud, _tenant(key)) == []


def test_not_multipart_is_415(cloud: Any) -> None:
    status, body, _ = api(cloud, "POST", ROUTE, {"file": "photos.zip"})
    assert status == 415 and body["error"]["code"] == "unsupported_media_type"
    assert "multipart/form-data" in body["error"]["message"]
    status, body, _ = api(cloud, "POST", ROUTE, raw=b"PK\x03\x04", headers={"Content-Type": "application/zip"})
    assert status == 415 and body["error"]["code"] == "unsupported_media_type"


def test_truncated_multipart_body_is_400(cloud: Any) -> None:
    raw = b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="p.zip"\r\n\r\n' + _PHOTO_ZIP
    status, body, _ = api(cloud, "POST", ROUTE, raw=raw,
                          headers={"Content-Type": "multipart/form-data; boundary=b0undary"})
    assert status == 400 and body["error"]["code"] == "invalid_multipart", body
    assert "closing boundary" in body["error"]["message"]


def test_over_the_limit_is_413_naming_the_presigned_upload(cloud: Any, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTERFLOW_UPLOAD_ZIP_MAX_BYTES", str(64 * 1024))
    key = f"upload-zip-big-{uuid.uuid4().hex[:8]}"
    big = photos.zip_of([("a.jpg", photos.photo_small(900, 700)), ("noise.bin", uuid.uuid4().bytes * 8000)],
                        compression=0)
    status, body = _curl("-X", "POST", f"{cloud.gateway.rest_url}{ROUTE}", "-H", f"x-api-key: {key}",
                         *_form(tmp_path, file=big), cwd=tmp_path)
    assert status == 413 and body["error"]["code"] == "payload_too_large", body
    assert "POST /api/uploads" in body["error"]["message"] and body["error"]["details"]["max_bytes"] == 64 * 1024
    assert _uploads_of(cloud, _tenant(key)) == []


def test_over_api_gateways_cap_is_the_gateway_response(cloud: Any, tmp_path: Path) -> None:
    (tmp_path / "huge.zip").write_bytes(b"\0" * (10 * 1024 * 1024 + 1))
    status, body = _curl("-X", "POST", f"{cloud.gateway.rest_url}{ROUTE}", "-F", "file=@huge.zip", cwd=tmp_path)
    assert status == 413 and body["error"]["code"] == "payload_too_large", body
    assert "POST /api/uploads" in body["error"]["message"]


def test_multipart_to_another_route_is_still_gated(cloud: Any) -> None:
    # Only the upload route reads its own form; elsewhere the body gate's 4 MiB still holds.
    part = b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n'
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    status, body, _ = api(cloud, "POST", "/api/generate", raw=part + b"1\r\n--b--\r\n", headers=headers)
    assert 400 <= status < 500 and body["error"]["code"], body
    big = part + b"0" * (4 * 1024 * 1024) + b"\r\n--b--\r\n"
    status, body, _ = api(cloud, "POST", "/api/generate", raw=big, headers=headers)
    assert status == 413 and body["error"]["code"] == "payload_too_large" and "4 MiB" in body["error"]["message"]


def _upload(cloud: Any, tmp_path: Path, key: str, project: str | None) -> str:
    form: dict[str, bytes | str] = {"file": photos.zip_of([("p.jpg", _small_face_free_jpeg())])}
    if project is not None:
        form["projectId"] = project
    status, body = _curl("-X", "POST", f"{cloud.gateway.rest_url}{ROUTE}", "-H", f"x-api-key: {key}",
                         *_form(tmp_path, **form), cwd=tmp_path)
    assert status == 202, body
    return str(body["job_id"])


def _all_pages(cloud: Any, key: str, query: str) -> list[str]:
    ids: list[str] = []
    cursor = None
    for _ in range(50):
        path = f"/api/jobs?{query}" + (f"&cursor={cursor}" if cursor else "")
        status, body, _ = api(cloud, "GET", path, headers={"x-api-key": key})
        assert status == 200, body
        ids += [j["job_id"] for j in body["jobs"]]
        assert all(j["project_id"] == query.split("project_id=")[1].split("&")[0] for j in body["jobs"])
        cursor = body["next"]
        if cursor is None:
            return ids
    raise AssertionError("the listing never ended")


def test_jobs_filtered_by_project_across_pages(cloud: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key, other = f"upload-zip-proj-{uuid.uuid4().hex[:8]}", f"upload-zip-proj-{uuid.uuid4().hex[:8]}"
    made = {p: [_upload(cloud, tmp_path, key, p) for _ in range(n)] for p, n in (("alpha", 3), ("beta", 2))}
    _upload(cloud, tmp_path, key, None)
    _upload(cloud, tmp_path, other, "alpha")  # another tenant's project of the same name
    newest_first = made["alpha"][::-1]
    for limit in (1, 2, 50):
        assert _all_pages(cloud, key, f"project_id=alpha&limit={limit}") == newest_first
    assert sorted(_all_pages(cloud, key, "project_id=beta")) == sorted(made["beta"])
    assert _all_pages(cloud, key, "project_id=nobody") == []
    # A cursor belongs to its project's listing.
    status, first, _ = api(cloud, "GET", "/api/jobs?project_id=alpha&limit=1", headers={"x-api-key": key})
    status, body, _ = api(cloud, "GET", f"/api/jobs?project_id=beta&cursor={first['next']}", headers={"x-api-key": key})
    assert status == 422 and body["error"]["code"] == "invalid_cursor"
    # With one index record read per query and one query per status, pages are short but the
    # listing is still complete and in order.
    monkeypatch.setattr(jobs.store, "PROJECT_FILTER_PAGE", 1)
    monkeypatch.setattr(jobs.store, "PROJECT_FILTER_READS", 1)
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = jobs.list_jobs(limit=2, cursor=cursor, tenant=_tenant(key), project_id="alpha")
        seen += [j.job_id for j in page]
        if cursor is None:
            break
    assert seen == newest_first


def test_rest_proxy_fixture_with_a_base64_form_answers_as_the_api(cloud: Any) -> None:
    # events/api/rest-proxy-upload-zip.json: API Gateway's event for seed 004's curl, the body
    # base64-encoded because multipart/form-data is a binary media type of the stack.
    from tests.events import load_event

    result = cloud.runtime.invoke(r.stack_spec().function("api").name, load_event("api/rest-proxy-upload-zip"))
    assert not result.failed, result.error_message
    assert result.payload["statusCode"] == 202, result.payload
    body = json.loads(result.payload["body"])
    assert (body["imageCount"], body["queued"], body["entries"], body["project_id"]) == (1, 1, 2, "proj-123")
    job = jobs.get_job(body["job_id"])
    assert (job.kind, job.tenant, job.priority, job.project_id) == ("crop", "default", 5, "proj-123")
    done = wait_for(lambda: (j := jobs.get_job(job.job_id)).total is not None and j.processed == j.total and j,
                    timeout=60, interval=0.3, what="the fixture's job to finish")
    assert (done.total, done.skipped) == (2, 1)


def test_idempotency_key_returns_the_same_batch(cloud: Any, tmp_path: Path) -> None:
    key = f"upload-zip-idem-{uuid.uuid4().hex[:8]}"
    idem = ["-H", f"x-api-key: {key}", "-H", f"Idempotency-Key: {uuid.uuid4().hex}"]
    url = f"{cloud.gateway.rest_url}{ROUTE}"
    first = photos.zip_of([("p.jpg", _small_face_free_jpeg())])
    answers = [_curl("-X", "POST", url, *idem, *_form(tmp_path, file=first, projectId="p1"), cwd=tmp_path)
               for _ in range(2)]
    assert answers[0] == answers[1] and answers[0][0] == 202
    got, listing, _ = api(cloud, "GET", "/api/jobs", headers={"x-api-key": key})
    assert got == 200 and [j["job_id"] for j in listing["jobs"]] == [answers[0][1]["job_id"]]
    # The upload of a keyed caller is split into that caller's job (the key names tenant and job).
    job_id = answers[0][1]["job_id"]
    assert answers[0][1]["key"] == f"uploads/{_tenant(key)}/{job_id}/file.zip"
    split = wait_for(lambda: (j := jobs.get_job(job_id)).total is not None and j, timeout=60, interval=0.3,
                     what="the upload to be split")
    assert (split.total, split.tenant) == (1, _tenant(key))
    other = photos.zip_of([("q.jpg", _small_face_free_jpeg())])
    status, body = _curl("-X", "POST", url, *idem, *_form(tmp_path, file=other, projectId="p1"), cwd=tmp_path)
    assert status == 422 and body["error"]["code"] == "idempotency_key_reused", body
