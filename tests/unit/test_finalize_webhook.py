"""Webhook: destination checks, signature, and which answers are retried."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from posterflow import tokens
from posterflow.finalize import webhook

SECRET = b"test-secret"


Seen = list[tuple[str, dict[str, str], bytes]]


@pytest.fixture(scope="module")
def _receiver() -> Iterator[tuple[str, Seen]]:
    """A receiver whose path says what to answer: /status/<code>, /slow."""
    seen: Seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.append((self.path, dict(self.headers), body))
            if self.path == "/slow":
                time.sleep(1.0)
            code = int(self.path.rsplit("/", 1)[-1]) if self.path.startswith("/status/") else 200
            self.send_response(code)
            if 300 <= code < 400:
                self.send_header("Location", "http://169.254.169.254/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", seen
    srv.shutdown()


@pytest.fixture
def server(_receiver: tuple[str, Seen], monkeypatch: pytest.MonkeyPatch) -> tuple[str, Seen]:
    monkeypatch.setenv(webhook.ENV_ALLOW_LOOPBACK, "1")
    _receiver[1].clear()
    return _receiver


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/hook", "must be http(s)"),
        ("file:///etc/passwd", "must be http(s)"),
        ("javascript:alert(1)", "must be http(s)"),
        ("http://169.254.169.254/latest/meta-data", "non-public address (169.254.169.254)"),
        ("http://10.0.0.7/hook", "non-public address (10.0.0.7)"),
        ("http://192.168.1.1:8080/hook", "non-public address"),
        ("http://[fd00:ec2::254]/", "non-public address"),
        ("http://[::ffff:10.0.0.1]/", "non-public address"),
        ("http://0.0.0.0/", "non-public address"),
        ("http://user:pw@example.com/", "plain host"),
        ("http:///nohost", "plain host"),
        ("http://example.com:99999/", "malformed"),
    ],
)
def test_refused_destinations(url: str, reason: str) -> None:
    with pytest.raises(webhook.WebhookRefused, match=reason.replace("(", r"\(").replace(")", r"\)")):
        webhook.resolve_target(url)


def test_loopback_only_with_the_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(webhook.ENV_ALLOW_LOOPBACK, raising=False)
    for url in ("http://127.0.0.1:8080/h", "http://localhost/h", "http://[::1]/h"):
        with pytest.raises(webhook.WebhookRefused, match="non-public"):
            webhook.resolve_target(url)
    monkeypatch.setenv(webhook.ENV_ALLOW_LOOPBACK, "1")
    assert webhook.resolve_target("http://127.0.0.1:8080/h?x=1").path == "/h?x=1"
    # The opt-in is for loopback only: metadata and private ranges stay refused.
    with pytest.raises(webhook.WebhookRefused):
        webhook.resolve_target("http://169.254.169.254/")


def test_public_address_is_pinned() -> None:
    target = webhook.resolve_target("https://93.184.216.34/hooks/done")
    assert (target.scheme, target.port, target.address, target.path) == ("https", 443, "93.184.216.34", "/hooks/done")


def test_delivery_is_signed_over_timestamp_and_body(server: tuple[str, list[Any]]) -> None:
    url, seen = server
    body = json.dumps({"job_id": "j1", "status": "completed"}).encode()
    delivery = webhook.deliver(url + "/ok", body, secret=SECRET)
    assert delivery.status == 200
    ((path, headers, received),) = seen
    assert path == "/ok" and received == body and headers["Content-Type"] == "application/json"
    header = headers[webhook.SIGNATURE_HEADER]
    assert header.startswith("t=") and ",v1=" in header
    tokens.verify_webhook_signature(received, header, secret=SECRET)
    with pytest.raises(tokens.TokenInvalid):
        tokens.verify_webhook_signature(received, header, secret=b"other")


@pytest.mark.parametrize("code", [500, 502, 503, 429])
def test_server_errors_are_retryable(server: tuple[str, list[Any]], code: int) -> None:
    with pytest.raises(webhook.WebhookRetryableError, match=f"HTTP {code}"):
        webhook.deliver(f"{server[0]}/status/{code}", b"{}", secret=SECRET)


@pytest.mark.parametrize("code", [400, 401, 404, 410])
def test_client_errors_are_final(server: tuple[str, list[Any]], code: int) -> None:
    with pytest.raises(webhook.WebhookRejected, match=f"HTTP {code}"):
        webhook.deliver(f"{server[0]}/status/{code}", b"{}", secret=SECRET)


def test_redirects_are_not_followed(server: tuple[str, list[Any]]) -> None:
    url, seen = server
    with pytest.raises(webhook.WebhookRejected, match="redirects are not followed"):
        webhook.deliver(f"{url}/status/302", b"{}", secret=SECRET)
    assert len(seen) == 1


def test_timeout_is_retryable(server: tuple[str, list[Any]]) -> None:
    with pytest.raises(webhook.WebhookRetryableError, match="timed out"):
        webhook.deliver(f"{server[0]}/slow", b"{}", secret=SECRET, timeout=0.2)


def test_connection_refused_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(webhook.ENV_ALLOW_LOOPBACK, "1")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(webhook.WebhookRetryableError, match="connection failed"):
        webhook.deliver(f"http://127.0.0.1:{port}/h", b"{}", secret=SECRET)
