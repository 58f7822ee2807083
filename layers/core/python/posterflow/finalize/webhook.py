"""The signed webhook: POST JSON to the caller's URL, refusing internal destinations.

The URL's host is resolved once, every address is checked (no private ranges, no cloud
metadata service, no loopback unless ``POSTERFLOW_WEBHOOK_ALLOW_LOOPBACK=1`` — set by tests and
the local cloud's demos), and the connection goes to the checked address with the original
Host header and TLS server name, so a DNS answer that changes between check and connect
(DNS rebinding) cannot redirect the request. Redirects are not followed for the same reason.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from posterflow import config, tokens
from posterflow.net.policy import IPAddress, is_public_address

ENV_ALLOW_LOOPBACK = config.WEBHOOK_ALLOW_LOOPBACK.name
ENV_TIMEOUT = config.WEBHOOK_TIMEOUT_S.name
SIGNATURE_HEADER = "X-Posterflow-Signature"
_PORTS = {"http": 80, "https": 443}
# 408 and 429 say "not now" rather than "never"; every other 4xx is the receiver's final word.
_RETRYABLE_4XX = frozenset({408, 429})


class WebhookRefused(Exception):
    """The URL may not be called (scheme, host, address): recorded, never retried."""


class WebhookRetryableError(Exception):
    """A 5xx, a timeout or a connection failure. The state machine retries on this name."""


class WebhookRejected(Exception):
    """The receiver answered with a final non-2xx status (4xx, 3xx): recorded, not retried."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str


@dataclass(frozen=True)
class Delivery:
    status: int
    elapsed_ms: float


def timeout_s() -> float:
    return config.webhook_timeout_s()


def _allowed(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return config.webhook_allow_loopback()
    return is_public_address(address)


def resolve_target(url: str) -> Target:
    """Check ``url`` and pick the address to connect to; raises :class:`WebhookRefused`."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise WebhookRefused(f"malformed webhook URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _PORTS:
        raise WebhookRefused(f"webhook URL must be http(s), got scheme {scheme or '(none)'!r}")
    host = (parts.hostname or "").rstrip(".")
    if not host or parts.username or parts.password:
        raise WebhookRefused("webhook URL needs a plain host (no credentials)")
    port = port or _PORTS[scheme]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise WebhookRefused(f"cannot resolve webhook host {host}: {exc}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise WebhookRefused(f"webhook host {host} has no address")
    for address in addresses:
        if not _allowed(address):
            raise WebhookRefused(f"webhook host {host} resolves to a non-public address ({address})")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme=scheme, host=host, port=port, path=path, address=str(addresses[0]))


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # Certificate and SNI are for the URL's host, not the pinned address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def payload(job: Any, *, status: str, results_url: str | None, status_url: str,
            merged_pdf_urls: list[str] | None = None) -> bytes:
    """The webhook's JSON; ``merged_pdf_urls`` (a ``merge_pdf`` job's, else None) adds
    ``merged_pdf_urls`` and ``merged_pdf_url`` (the one link when the merged PDF is one file)
    as the job status does."""
    body: dict[str, Any] = {
        "event": f"job.{status}",
        "job_id": job.job_id,
        "name": job.name,
        "status": status,
        "kind": job.kind,
        "counts": {
            "total": job.total,
            "succeeded": job.succeeded,
            "failed": job.failed,
            "skipped": job.skipped,
            "cancelled": job.cancelled,
        },
        "results_url": results_url,
        "status_url": status_url,
        "error": job.error,
        "metadata": job.metadata,
    }
    if merged_pdf_urls is not None:
        body["merged_pdf_url"] = merged_pdf_urls[0] if len(merged_pdf_urls) == 1 else None
        body["merged_pdf_urls"] = list(merged_pdf_urls)
    return json.dumps(body, separators=(",", ":"), default=str).encode()


def deliver(url: str, body: bytes, *, secret: bytes | Sequence[bytes] | None = None,
            timeout: float | None = None) -> Delivery:
    """POST ``body`` signed with ``X-Posterflow-Signature``. Returns on 2xx; raises
    :class:`WebhookRefused`, :class:`WebhookRejected` or :class:`WebhookRetryableError`."""
    target = resolve_target(url)
    limit = timeout if timeout is not None else timeout_s()
    conn: http.client.HTTPConnection = (
        _PinnedHTTPSConnection(target, limit) if target.scheme == "https" else _PinnedHTTPConnection(target, limit)
    )
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "posterflow-webhook/1",
        SIGNATURE_HEADER: tokens.webhook_signature(
            body, secret=secret if secret is not None else config.signing_secret()
        ),
    }
    started = time.perf_counter()
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read(64 * 1024)  # drain a little so the server sees a clean exchange
        status = resp.status
    except TimeoutError:
        raise WebhookRetryableError(f"webhook timed out after {limit:g} s") from None
    except ssl.SSLCertVerificationError as exc:
        raise WebhookRejected(f"webhook TLS certificate rejected: {exc.verify_message}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise WebhookRetryableError(f"webhook connection failed: {type(exc).__name__}: {exc}") from None
    finally:
        conn.close()
    elapsed = (time.perf_counter() - started) * 1000
    if 200 <= status < 300:
        return Delivery(status=status, elapsed_ms=elapsed)
    if status >= 500 or status in _RETRYABLE_4XX:
        raise WebhookRetryableError(f"webhook answered HTTP {status}")
    raise WebhookRejected(
        f"webhook answered HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
    )
