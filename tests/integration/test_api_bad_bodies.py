"""Bad request bodies through the local REST API: each is a 4xx in the error shape, never a 502."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from posterflow_local.apigw import BINARY_MEDIA_TYPES, rest_event
from tests.integration.helpers import api

ROUTES = ("/api/generate-batch", "/api/generate", "/api/generate-async", "/api/templates/upload")
DEEP_OBJECT = b'{"custom_data": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_001
NOT_UTF8 = b'{"template_id": "\xff\xfe", "custom_data": {"name": "Zo\xeb"}}'


@pytest.fixture(scope="module")
def template_id(cloud: Any) -> str:
    section = f"badbody-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": "Bad bodies", "format": "jpeg", "width": 120, "height": 60,
        "html_content": "<div>{{ a }}</div>"})
    assert status == 201, body
    return f"{section}_latest"


def with_number(path: str, template_id: str, number: str) -> bytes:
    """A body for ``path`` with ``number`` in its data (in ``width`` for a template upload)."""
    if path == "/api/templates/upload":
        text = '{"section": "n", "name": "n", "html_content": "<p>x</p>", "width": ' + number + "}"
    elif path == "/api/generate-batch":
        text = '{"template_id": "' + template_id + '", "items": [{"a": ' + number + "}]}"
    else:
        text = '{"template_id": "' + template_id + '", "custom_data": {"a": ' + number + "}}"
    return text.encode()


def assert_error(status: int, body: Any, expected_status: int, code: str) -> None:
    assert status == expected_status, body
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"} and body["error"]["code"] == code, body


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize(("raw", "status", "code"), [
    (b"[" * 100_000, 422, "too_deep"),
    (DEEP_OBJECT, 422, "too_deep"),
    (NOT_UTF8, 400, "invalid_encoding"),
    (b'{"a": NaN}', 400, "malformed_json"),
], ids=["deep-array", "deep-object", "not-utf8", "nan"])
def test_bad_body_is_a_4xx(cloud: Any, path: str, raw: bytes, status: int, code: str) -> None:
    got, body, _ = api(cloud, "POST", path, raw=raw)
    assert_error(got, body, status, code)


@pytest.mark.parametrize("headers", [{"Content-Type": ""}, {"Content-Type": "text/plain"},
                                     {"Content-Type": "application/octet-stream"}], ids=["none", "text", "binary"])
def test_not_utf8_with_other_content_types(cloud: Any, headers: dict[str, str]) -> None:
    got, body, _ = api(cloud, "POST", "/api/generate", raw=NOT_UTF8, headers=headers)
    assert_error(got, body, 400, "invalid_encoding")


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("number", ["1" + "0" * 5000, "1" + "0" * 38, "1e308", "-1e308", "1e400", "1e-200"],
                         ids=["5001-digits", "39-digits", "1e308", "-1e308", "1e400", "1e-200"])
def test_number_dynamodb_cannot_store_is_a_422(cloud: Any, template_id: str, path: str, number: str) -> None:
    got, body, _ = api(cloud, "POST", path, raw=with_number(path, template_id, number))
    assert_error(got, body, 422, "number_out_of_range")
    assert body["error"]["details"]["max_int_digits"] == 38


def test_api_still_answers_and_a_normal_batch_works(cloud: Any, template_id: str) -> None:
    status, body, _ = api(cloud, "GET", "/health")
    assert status == 200 and body["status"] == "ok"
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {
        "template_id": template_id, "items": [{"a": "Zoë — 東京", "n": 1.5, "big": 10**37, "tiny": 1e-100}]})
    assert status == 202, body
    assert body["total_items"] == 1


def test_gateway_passes_bodies_as_api_gateway_does() -> None:
    # The stack's binary media type is */*: every body goes base64-encoded, bytes intact (the
    # body gate decodes it and refuses what is not UTF-8).
    def event(data: bytes, content_type: str, types: tuple[str, ...] = BINARY_MEDIA_TYPES) -> dict[str, Any]:
        request = make_mocked_request("POST", "/api/generate", headers={"Content-Type": content_type})
        return rest_event(request, data, "prod", binary_media_types=types)

    for content_type in ("application/json", "text/plain", "application/octet-stream"):
        ev = event(NOT_UTF8, content_type)
        assert (ev["body"], ev["isBase64Encoded"]) == (base64.b64encode(NOT_UTF8).decode(), True)
    assert event(b"", "application/json")["body"] is None
    # A type no binary media type matches goes as UTF-8 text, bytes that are not UTF-8 as U+FFFD.
    ev = event(NOT_UTF8, "application/json", ("image/*",))
    assert (ev["body"], ev["isBase64Encoded"]) == (NOT_UTF8.decode("utf-8", "replace"), False)
    ev = event("Zoë".encode(), "text/plain", ("image/*",))
    assert (ev["body"], ev["isBase64Encoded"]) == ("Zoë", False)
    ev = event(b"\x89PNG\xff", "image/png; q=1", ("image/*",))
    assert (ev["body"], ev["isBase64Encoded"]) == (base64.b64encode(b"\x89PNG\xff").decode(), True)


def test_a_body_that_is_not_json_under_another_type_is_415_in_the_error_shape(cloud: Any) -> None:
    status, body, _ = api(cloud, "POST", "/api/generate", raw=b"name=Ada", headers={"Content-Type": "text/plain"})
    assert status == 415, body
    assert body["error"]["code"] == "unsupported_media_type" and "application/json" in body["error"]["message"]
