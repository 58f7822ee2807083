"""fetch_source: data: URIs, allow-listed URLs (404 → error, redirects re-checked), S3 keys."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from posterflow.overlay import OverlayError, fetch_source
from posterflow.render.netpolicy import AllowRule, NetPolicy


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
    assert fetch_source(f"{base}/logo.png", policy=_policy(base)) == b"PNGDATA"
    assert fetch_source(f"{base}/moved", policy=_policy(base)) == b"PNGDATA"


def test_404_is_an_error_with_the_status(server: tuple[str, list[str]]) -> None:
    base, _ = server
    with pytest.raises(OverlayError, match=r"logo URL .* answered 404"):
        fetch_source(f"{base}/missing.png", policy=_policy(base), what="logo")


def test_blocked_urls_and_redirect_targets(server: tuple[str, list[str]]) -> None:
    base, seen = server
    with pytest.raises(OverlayError, match="not allowed"):
        fetch_source(f"{base}/logo.png", policy=NetPolicy())
    assert seen == []
    with pytest.raises(OverlayError, match=r"169\.254\.169\.254.*not allowed"):
        fetch_source(f"{base}/escape", policy=_policy(base))
    with pytest.raises(OverlayError, match="not allowed"):
        fetch_source("file:///etc/passwd", policy=_policy(base))


def test_data_uri_and_s3_keys() -> None:
    policy = NetPolicy()
    assert fetch_source("data:text/plain,abc", policy=policy) == b"abc"
    assert fetch_source("assets/logo.png", policy=policy, read_s3=lambda key: key.encode()) == b"assets/logo.png"

    def missing(key: str) -> bytes:
        raise KeyError(key)

    with pytest.raises(OverlayError, match=r"s3 key 'assets/nope\.png' could not be read"):
        fetch_source("assets/nope.png", policy=policy, read_s3=missing, what="logo")
    with pytest.raises(OverlayError, match="no S3 reader"):
        fetch_source("assets/logo.png", policy=policy)
    with pytest.raises(OverlayError, match="empty"):
        fetch_source("  ", policy=policy)
