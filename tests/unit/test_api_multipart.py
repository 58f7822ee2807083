"""api/multipart.py: the form of POST /api/batch/upload-zip read within its budget, and the
route's own form checks (fields, file name), without the cloud."""

from __future__ import annotations

import base64
import json

import pytest
from aiohttp.test_utils import make_mocked_request

from posterflow import config
from posterflow.api import multipart, routes_upload_zip
from posterflow.api.errors import ApiError
from posterflow.errors import PosterflowError, Reason
from posterflow_local.apigw import rest_event

BOUNDARY = "------------------------d74496d66958873e"
TYPE = f"multipart/form-data; boundary={BOUNDARY}"
BUDGET = multipart.Budget(max_body_bytes=64 * 1024)


def form(*parts: tuple[str, bytes, str | None]) -> bytes:
    """A body as curl -F writes it: (name, value, filename or None)."""
    out = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        out += b"Content-Type: application/zip\r\n" if filename else b""
        out += b"\r\n" + value + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def reason(exc: pytest.ExceptionInfo[ApiError]) -> Reason:
    return exc.value.reason


def test_parts_in_order_with_names_files_and_binary_data_intact() -> None:
    data = bytes(range(256)) * 10 + b"\r\n--not-the-boundary\r\n"
    parts = multipart.parse(form(("file", data, "photos.zip"), ("projectId", b"proj-123", None)), TYPE, BUDGET)
    assert [(p.name, p.filename, p.is_file) for p in parts] == [("file", "photos.zip", True),
                                                                 ("projectId", None, False)]
    assert bytes(parts[0].data) == data and parts[1].text() == "proj-123"


def test_every_chunk_boundary_split_gives_the_same_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    body = form(("file", b"PK" + b"z" * 300, "a.zip"), ("priority", b"5", None))
    want = [(p.name, bytes(p.data)) for p in multipart.parse(body, TYPE, BUDGET)]
    for chunk in (1, 7, 64):
        monkeypatch.setattr(multipart, "CHUNK", chunk)
        assert [(p.name, bytes(p.data)) for p in multipart.parse(body, TYPE, BUDGET)] == want


@pytest.mark.parametrize(("content_type", "want"), [
    ("application/json", Reason.UNSUPPORTED_MEDIA_TYPE),
    (None, Reason.UNSUPPORTED_MEDIA_TYPE),
    ("application/zip", Reason.UNSUPPORTED_MEDIA_TYPE),
    ("multipart/form-data", Reason.INVALID_MULTIPART),
    ("multipart/form-data; boundary=" + "x" * 71, Reason.INVALID_MULTIPART),
])
def test_content_type_must_be_a_form_with_a_boundary(content_type: str | None, want: Reason) -> None:
    with pytest.raises(ApiError) as exc:
        multipart.parse(form(("file", b"x", "a.zip")), content_type, BUDGET)
    assert reason(exc) == want


@pytest.mark.parametrize("body", [
    form(("file", b"PK", "a.zip"))[:-8],  # no closing boundary
    b"no boundary anywhere",
    f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nx\r\n--{BOUNDARY}--\r\n".encode(),  # no disposition
], ids=["truncated", "garbage", "no-disposition"])
def test_malformed_bodies_are_invalid_multipart(body: bytes) -> None:
    with pytest.raises(ApiError) as exc:
        multipart.parse(body, TYPE, BUDGET)
    assert reason(exc) == Reason.INVALID_MULTIPART


def test_budget_limits_parts_fields_and_the_body() -> None:
    with pytest.raises(ApiError) as exc:
        multipart.parse(form(*[(f"f{i}", b"1", None) for i in range(17)]), TYPE, BUDGET)
    assert reason(exc) == Reason.PAYLOAD_TOO_LARGE and exc.value.details == {"max_parts": 16}
    with pytest.raises(ApiError) as exc:
        multipart.parse(form(("projectId", b"p" * (8 * 1024 + 1), None)), TYPE, BUDGET)
    assert reason(exc) == Reason.PAYLOAD_TOO_LARGE and exc.value.details["field"] == "projectId"
    # A file part may use the whole body budget.
    assert len(multipart.parse(form(("file", b"z" * 60_000, "a.zip")), TYPE, BUDGET)[0].data) == 60_000


def test_body_bytes_refuses_an_oversized_base64_body_before_decoding_it() -> None:
    hint = multipart.Budget(max_body_bytes=1000, big_upload_hint="use POST /api/uploads")
    ok = {"body": base64.b64encode(b"a" * 1000).decode(), "isBase64Encoded": True}
    assert multipart.body_bytes(ok, hint) == b"a" * 1000
    with pytest.raises(ApiError) as exc:
        multipart.body_bytes({"body": base64.b64encode(b"a" * 1001).decode(), "isBase64Encoded": True}, hint)
    assert reason(exc) == Reason.PAYLOAD_TOO_LARGE and "POST /api/uploads" in exc.value.message
    with pytest.raises(ApiError) as exc:
        multipart.body_bytes({"body": "not base64!", "isBase64Encoded": True}, hint)
    assert reason(exc) == Reason.INVALID_ENCODING
    # A body passed as text is usable only if no byte was replaced on the way.
    assert multipart.body_bytes({"body": "plain", "isBase64Encoded": False}, hint) == b"plain"
    with pytest.raises(ApiError) as exc:
        multipart.body_bytes({"body": "PK\ufffd\ufffd", "isBase64Encoded": False}, hint)
    assert reason(exc) == Reason.INVALID_ENCODING and "binary media type" in exc.value.message


def _read(*parts: tuple[str, bytes, str | None]) -> tuple[multipart.Part, routes_upload_zip.UploadZipForm]:
    return routes_upload_zip.read_form(multipart.parse(form(*parts), TYPE, BUDGET))


def test_form_fields_in_the_seeds_and_snake_case_spelling() -> None:
    file, f = _read(("file", b"PK", "x.zip"), ("projectId", b" proj-123 ", None), ("priority", b"5", None),
                    ("notify_email", b"ops@example.com", None), ("webhookUrl", b"https://example.com/h", None),
                    ("unknown", b"ignored", None))
    assert bytes(file.data) == b"PK"
    assert (f.project_id, f.priority, f.notify_email, f.webhook_url) == (
        "proj-123", 5, "ops@example.com", "https://example.com/h")


@pytest.mark.parametrize(("parts", "want"), [
    ((("projectId", b"p", None),), Reason.MISSING_FILE),
    ((("file", b"", "empty.zip"),), Reason.MISSING_FILE),
    ((("file", b"PK", "a.zip"), ("file", b"PK", "b.zip")), Reason.VALIDATION_ERROR),
    ((("file", b"PK", "a.zip"), ("projectId", b"a", None), ("project_id", b"b", None)), Reason.VALIDATION_ERROR),
    ((("file", b"PK", "a.zip"), ("priority", b"urgent", None)), Reason.VALIDATION_ERROR),
    ((("file", b"PK", "a.zip"), ("priority", b"11", None)), Reason.VALIDATION_ERROR),
    ((("file", b"PK", "a.zip"), ("projectId", b"p" * 201, None)), Reason.VALIDATION_ERROR),
    ((("file", b"PK", "a.zip"), ("projectId", b"\xff", None)), Reason.INVALID_ENCODING),
], ids=["no-file", "empty-file", "two-files", "both-spellings", "priority-word", "priority-11", "long-project",
        "project-not-utf8"])
def test_bad_forms(parts: tuple[tuple[str, bytes, str | None], ...], want: Reason) -> None:
    with pytest.raises(PosterflowError) as exc:  # the priority's is posterflow.jobs.lanes.InvalidPriority
        _read(*parts)
    assert exc.value.reason == want


@pytest.mark.parametrize(("given", "stored"), [
    ("photos.zip", "photos.zip"),
    ("Team Photos 2026.ZIP", "Team_Photos_2026.ZIP"),
    ("C:\\Users\\ada\\photos.zip", "photos.zip"),
    ("../../etc/passwd", "passwd.zip"),
    (".hidden.zip", "hidden.zip"),
    ("", "upload.zip"),
    (None, "upload.zip"),
    ("фото.zip", "zip.zip"),
])
def test_stored_names_are_plain_and_end_in_zip(given: str | None, stored: str) -> None:
    assert routes_upload_zip.safe_filename(given) == stored


def test_a_form_at_the_default_limit_fits_a_lambda_request_payload() -> None:
    # API Gateway base64-encodes the form (a binary media type) into the proxy event, and
    # Lambda takes at most 6 MB (6,291,456 bytes) per synchronous request: the default limit
    # must leave room for the event around the body, headers at API Gateway's 10 KB maximum
    # (twice: headers and multiValueHeaders).
    limit = int(config.UPLOAD_ZIP_MAX_BYTES.default or 0)
    headers = {"Content-Type": TYPE, "User-Agent": "curl/8.5.0", "X-Padding": "p" * (10 * 1024 - 200)}
    request = make_mocked_request("POST", "/api/batch/upload-zip", headers=headers)
    event = rest_event(request, b"\0" * limit, "prod")
    assert event["isBase64Encoded"] is True
    size = len(json.dumps(event).encode())
    assert size < 6 * 1024 * 1024, size
    # …and a body half a MiB larger would not fit: the default is near the real ceiling.
    assert len(json.dumps(rest_event(request, b"\0" * (limit + 512 * 1024), "prod")).encode()) > 6 * 1024 * 1024
