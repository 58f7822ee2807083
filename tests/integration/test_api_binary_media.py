"""Binary answers and base64 request bodies through the local REST API, as API Gateway makes them
with the stack's one binary media type (``*/*``, ``posterflow.resources``).

API Gateway decodes a Lambda proxy answer marked ``isBase64Encoded`` only when the request's
*first* Accept type matches a binary media type (else the client gets the base64 text), and it
base64-encodes every request body whose Content-Type matches one: with ``*/*`` previews arrive
as image bytes for every ordinary client, and every body reaches the function base64-encoded.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import subprocess
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import make_mocked_request
from PIL import Image

from posterflow.resources import stack_spec
from posterflow_local.apigw import BINARY_MEDIA_TYPES, proxy_response, rest_event
from posterflow_local.lambda_runtime import InvokeResult
from tests.integration.helpers import api

PNG = b"\x89PNG\r\n\x1a\n"
# What clients send first (API Gateway looks at the first type only).
BROWSER_IMG = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"  # Chrome's <img>
BROWSER_PAGE = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"  # a link opened
PYTHON_CLIENT = "application/json"  # clients/python sends it on every call
NOT_UTF8 = b'{"template_id": "\xff\xfe", "custom_data": {"name": "Zo\xeb"}}'


@pytest.fixture(scope="module")
def template_id(cloud: Any) -> str:
    section = f"binary-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": "Binary", "format": "png", "width": 160, "height": 80,
        "html_content": "<div style='font-size:30px'>{{ name }}</div>"})
    assert status == 201, body
    return f"{section}_latest"


def get(cloud: Any, path: str, accept: str | None) -> tuple[int, bytes, dict[str, str]]:
    """GET with exactly this Accept header (none at all for ``None``): http.client adds none."""
    url = urlsplit(cloud.gateway.rest_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=120)
    try:
        conn.request("GET", path, headers={} if accept is None else {"Accept": accept})
        resp = conn.getresponse()
        return resp.status, resp.read(), dict(resp.getheaders())
    finally:
        conn.close()


def assert_png(data: bytes, size: tuple[int, int] = (160, 80)) -> None:
    assert data[:8] == PNG, data[:60]
    assert Image.open(io.BytesIO(data)).size == size


def test_the_stack_declares_every_type_binary() -> None:
    assert stack_spec().api_binary_media_types == BINARY_MEDIA_TYPES == ("*/*",)


def test_preview_with_curls_default_accept_is_png_bytes(cloud: Any, template_id: str, tmp_path: Any) -> None:
    out = tmp_path / "preview.png"
    done = subprocess.run(["curl", "-sS", "-v", "-o", str(out), "-w", "%{http_code} %{content_type}",
                           f"{cloud.gateway.rest_url}/api/templates/{template_id}/preview?format=png"],
                          capture_output=True, text=True, timeout=120, check=True)
    assert "> Accept: */*" in done.stderr  # curl's own default, nothing set here
    assert done.stdout == "200 image/png", done.stdout
    assert_png(out.read_bytes())


@pytest.mark.parametrize("accept", [BROWSER_IMG, BROWSER_PAGE, PYTHON_CLIENT, "*/*", None],
                         ids=["browser-img", "browser-page", "python-client", "requests-httpx", "no-accept"])
def test_preview_is_png_bytes_whatever_the_first_accept_type(cloud: Any, template_id: str,
                                                             accept: str | None) -> None:
    status, data, headers = get(cloud, f"/api/templates/{template_id}/preview?format=png", accept)
    assert status == 200, data[:300]
    assert headers["Content-Type"] == "image/png"
    assert_png(data)


def test_text_answers_stay_text(cloud: Any) -> None:
    # The dashboard's files and JSON answers are not base64: no Accept changes them.
    from posterflow.api import routes_dashboard

    for accept in (BROWSER_PAGE, "*/*", None):
        status, data, headers = get(cloud, "/static/app.js", accept)
        assert status == 200 and headers["Content-Type"].startswith("text/javascript")
        assert data.decode() == (routes_dashboard.DASHBOARD_DIR / "app.js").read_text()
        status, data, _ = get(cloud, "/health", accept)
        assert status == 200 and json.loads(data)["status"] == "ok"


def test_a_mismatched_accept_gets_the_base64_text_as_on_aws() -> None:
    # The gateway decodes by the request's first Accept type, never by the answer's type.
    answer = InvokeResult(payload={"statusCode": 200, "headers": {"Content-Type": "image/png"},
                                   "body": base64.b64encode(PNG + b"rest").decode(), "isBase64Encoded": True})
    only_png = ("image/png",)
    for accept in (BROWSER_PAGE, "*/*", "application/json", None):  # first type not image/png
        resp = proxy_response(answer, accept, binary_media_types=only_png)
        assert resp.body == base64.b64encode(PNG + b"rest"), accept
    assert proxy_response(answer, "image/png,*/*", binary_media_types=only_png).body == PNG + b"rest"
    assert proxy_response(answer, "image/*", binary_media_types=("image/*",)).body == PNG + b"rest"
    assert proxy_response(answer, BROWSER_IMG, binary_media_types=("image/*",)).body == PNG + b"rest"
    # A browser's <img> lists image/avif first: image/png alone never matches it.
    assert proxy_response(answer, BROWSER_IMG, binary_media_types=only_png).body == base64.b64encode(PNG + b"rest")
    # The stack's */* matches every first type.
    for accept in (BROWSER_IMG, BROWSER_PAGE, "*/*", "application/json", None):
        assert proxy_response(answer, accept).body == PNG + b"rest", accept
    # A text answer is never decoded.
    text = InvokeResult(payload={"statusCode": 200, "body": '{"a": 1}'})
    assert proxy_response(text, "*/*").body == b'{"a": 1}'


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded", "text/plain",
                                          "application/octet-stream", None])
def test_every_request_body_reaches_the_function_base64_encoded(content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    request = make_mocked_request("POST", "/api/generate", headers=headers)
    for data in (b'{"template_id": "t_latest", "custom_data": {"name": "Zo\xc3\xab"}}', NOT_UTF8):
        ev = rest_event(request, data, "prod")
        assert ev["isBase64Encoded"] is True
        assert base64.b64decode(ev["body"]) == data  # intact: bytes that are not UTF-8 included
    # A type no binary media type matches goes as text, as API Gateway sends it.
    ev = rest_event(request, NOT_UTF8, "prod", binary_media_types=("multipart/form-data",))
    assert (ev["body"], ev["isBase64Encoded"]) == (NOT_UTF8.decode("utf-8", "replace"), False)


def test_json_posted_with_curl_reaches_the_routes(cloud: Any, tmp_path: Any) -> None:
    # curl -d: curl's form content type, the seeds' examples; the body arrives base64-encoded.
    section = f"curl-{uuid.uuid4().hex[:6]}"
    payload = json.dumps({"section": section, "name": "Zoë", "html_content": "<p>{{ who }} — 東京</p>"},
                         ensure_ascii=False)
    done = subprocess.run(["curl", "-sS", "-d", payload.encode(), f"{cloud.gateway.rest_url}/api/templates/upload"],
                          capture_output=True, timeout=120, check=True)
    body = json.loads(done.stdout)
    assert body["template_id"] == f"{section}_v1" and body["name"] == "Zoë", body
    status, got, _ = api(cloud, "GET", f"/api/templates/{section}_latest")
    assert status == 200 and got["html_content"] == "<p>{{ who }} — 東京</p>"
    # Bytes that are not UTF-8, and JSON past the limits, are still refused with the 4xx.
    for data, expected in ((NOT_UTF8, (400, "invalid_encoding")), (b"[" * 100_000, (422, "too_deep")),
                           (b'{"a": NaN}', (400, "malformed_json"))):
        (tmp_path / "body").write_bytes(data)
        done = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", "-H", "Content-Type: application/json",
                               "--data-binary", f"@{tmp_path / 'body'}", f"{cloud.gateway.rest_url}/api/generate"],
                              capture_output=True, timeout=120, check=True)
        text, _, code = done.stdout.rpartition(b"\n")
        assert (int(code), json.loads(text)["error"]["code"]) == expected
