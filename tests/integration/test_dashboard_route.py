"""The dashboard served by the API (``GET /dashboard``, ``GET /static/<file>``), as the deployed
stack serves it: the page, its files, and the strict Content-Security-Policy on every answer;
the local cloud's ``/`` sends the same headers."""

from __future__ import annotations

import re
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from posterflow.api import links, routes_dashboard
from tests.integration.helpers import api


def directives(csp: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def test_the_page_with_a_strict_csp(cloud: Any) -> None:
    status, body, headers = api(cloud, "GET", "/dashboard")  # no API key: the page is public
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert page == (routes_dashboard.DASHBOARD_DIR / "index.html").read_text()
    assert '<script src="static/app.js"></script>' in page
    # No inline script: every <script> has a src.
    assert all("src=" in tag for tag in re.findall(r"<script\b[^>]*>", page))

    csp = directives(headers["Content-Security-Policy"])
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    # Connections: this API and the WebSocket API only.
    assert csp["connect-src"] == ["'self'", cloud.gateway.ws_url]
    # Images: this API, previews fetched with the key, and the bucket's presigned links.
    assert csp["img-src"] == ["'self'", "blob:", "data:", origin(links.presigned_get("outputs/x.png"))]
    assert not any("unsafe" in v for values in csp.values() for v in values)
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"


def test_the_page_files(cloud: Any) -> None:
    status, body, headers = api(cloud, "GET", "/static/app.js")
    assert status == 200
    assert headers["Content-Type"].startswith("text/javascript")
    assert body.decode() == (routes_dashboard.DASHBOARD_DIR / "app.js").read_text()
    assert "Content-Security-Policy" in headers
    status, body, headers = api(cloud, "GET", "/static/style.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css")


def test_nothing_else_is_served(cloud: Any) -> None:
    for path in ("/static/missing.js", "/static/index.html", "/static/..%2Frouters_dashboard.py",
                 "/static/%2E%2E%2Fapp.py", "/static/.hidden.js"):
        status, body, _ = api(cloud, "GET", path)
        assert status == 404, (path, status, body)
        assert body["error"]["code"] in ("not_found", "no_route"), path


def test_the_local_cloud_root_sends_the_same_headers(cloud: Any) -> None:
    with urllib.request.urlopen(f"{cloud.gateway.rest_url}/", timeout=30) as resp:
        page, headers = resp.read().decode(), dict(resp.headers)
    assert page == (routes_dashboard.DASHBOARD_DIR / "index.html").read_text()
    served = directives(headers["Content-Security-Policy"])
    _, _, api_headers = api(cloud, "GET", "/dashboard")
    assert served == directives(api_headers["Content-Security-Policy"])


def test_the_api_function_answers_the_gateways_keyless_event(cloud: Any) -> None:
    """The event API Gateway sends for ``GET /dashboard`` (its own resource, no API key)."""
    from posterflow import resources as r
    from tests.events import load_event

    result = cloud.runtime.invoke(r.stack_spec().function("api").name, load_event("api/dashboard"))
    assert not result.failed, result.error_payload()
    answer = result.payload
    assert answer["statusCode"] == 200
    headers = {k.lower(): v for k, v in (answer.get("headers") or {}).items()}
    for k, values in (answer.get("multiValueHeaders") or {}).items():
        headers.setdefault(k.lower(), values[0])
    assert headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "<title>posterflow dashboard</title>" in answer["body"]


def test_the_page_is_not_part_of_the_api_schema(cloud: Any) -> None:
    status, spec, _ = api(cloud, "GET", "/api/openapi.json")
    assert status == 200
    assert "/health" in spec["paths"]
    assert not any(p.startswith(("/dashboard", "/static")) for p in spec["paths"])
