"""net.fetch: data: URIs and allow-listed URLs (404 → error, redirects re-checked)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from posterflow.net.fetch import FetchFailed, FetchRefused, decode_data_uri, fetch_url
from posterflow.net.policy import AllowRule, NetPolicy


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            if self.path == "/logo.png":
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"PNGDATA")
            elif self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "/logo.png")
                self.end_headers()
            elif self.path == "/escape":
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.end_headers()
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}", seen
    httpd.shutdown()


def _policy(base: str) -> NetPolicy:
    return NetPolicy([AllowRule.parse(f"{base}/", allow_private=True)])


def test_allow_listed_url_and_redirect(server: tuple[str, list[str]]) -> None:
    base, _ = server
    assert fetch_url(f"{base}/logo.png", _policy(base)) == b"PNGDATA"
    assert fetch_url(f"{base}/moved", _policy(base)) == b"PNGDATA"


def test_404_is_a_failure_with_the_status(server: tuple[str, list[str]]) -> None:
    base, _ = server
    with pytest.raises(FetchFailed, match=r"logo URL .* answered 404"):
        fetch_url(f"{base}/missing.png", _policy(base), what="logo")


def test_blocked_urls_and_redirect_targets_are_refused(server: tuple[str, list[str]]) -> None:
    base, seen = server
    with pytest.raises(FetchRefused, match="not allowed"):
        fetch_url(f"{base}/logo.png", NetPolicy())
    assert seen == []
    with pytest.raises(FetchRefused, match=r"169\.254\.169\.254.*not allowed"):
        fetch_url(f"{base}/escape", _policy(base))
    with pytest.raises(FetchRefused, match="not allowed"):
        fetch_url("file:///etc/passwd", _policy(base))


def test_data_uri_base64_and_percent_encoded() -> None:
    raw = b"\x89PNG fake bytes"
    uri = "data:image/png;base64," + base64.b64encode(raw).decode()
    assert decode_data_uri(uri) == raw
    assert decode_data_uri("data:text/plain,hello%20world") == b"hello world"
    svg = "data:image/svg+xml;charset=utf-8;base64," + base64.b64encode(b"<svg/>").decode()
    assert decode_data_uri(svg) == b"<svg/>"


def test_bad_data_uris() -> None:
    with pytest.raises(FetchRefused):
        decode_data_uri("https://example.com/a.png")
    for uri in ("data:image/png;base64,***not base64***", "data:"):
        with pytest.raises((FetchFailed, FetchRefused)):
            decode_data_uri(uri)
