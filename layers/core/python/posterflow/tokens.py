"""HMAC tokens: per-job tokens (WebSocket progress), expiring download tokens (the email's
link) and webhook signatures.

Each kind of token signs its own prefix, so a token of one kind is never valid as another.
The secret comes from :func:`posterflow.config.signing_secret` unless one is passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from posterflow import config

DOWNLOAD_TTL_S = 7 * 24 * 3600


class TokenError(Exception):
    """A token that does not grant access; the message is safe to show to the caller."""


class TokenInvalid(TokenError):
    """Malformed or tampered with (the signature does not match)."""


class TokenExpired(TokenError):
    """Genuine, but past its expiry."""


def _sign(message: str, secret: bytes | None) -> bytes:
    return hmac.new(secret if secret is not None else config.signing_secret(), message.encode(),
                    hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def job_token(job_id: str, *, secret: bytes | None = None) -> str:
    """The token that lets a client follow one job's progress."""
    return _b64(_sign(f"job:{job_id}", secret))


def verify_job_token(job_id: str, token: str, *, secret: bytes | None = None) -> bool:
    return hmac.compare_digest(job_token(job_id, secret=secret), token)


def download_token(job_id: str, *, ttl_s: int = DOWNLOAD_TTL_S, now: float | None = None,
                   secret: bytes | None = None) -> str:
    """``<expiry unix>.<signature>``, the signature over job id and expiry."""
    expires = int((time.time() if now is None else now) + ttl_s)
    return f"{expires}.{_b64(_sign(f'download:{job_id}:{expires}', secret))}"


def verify_download_token(job_id: str, token: str, *, now: float | None = None,
                          secret: bytes | None = None) -> int:
    """The token's expiry if it is valid for ``job_id``; raises :class:`TokenInvalid` when it
    is malformed or tampered with and :class:`TokenExpired` when it is genuine but old. The
    signature is checked first, so an edited expiry reads as tampered, never as expired."""
    expires_text, sep, signature = token.partition(".")
    if not sep or not expires_text.isdigit() or len(expires_text) > 12:
        raise TokenInvalid("the download link is malformed")
    expected = _b64(_sign(f"download:{job_id}:{expires_text}", secret))
    if not hmac.compare_digest(expected, signature):
        raise TokenInvalid("the download link is not valid for this job")
    expires = int(expires_text)
    if (time.time() if now is None else now) >= expires:
        raise TokenExpired("the download link has expired; ask for a new one")
    return expires


def webhook_signature(body: bytes, *, secret: bytes, timestamp: int | None = None) -> str:
    """The ``X-Posterflow-Signature`` header value: ``t=<unix>,v1=<hex hmac-sha256 of t.body>``."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify_webhook_signature(body: bytes, header: str, *, secret: bytes, tolerance_s: int = 300,
                             now: float | None = None) -> None:
    """What a webhook receiver does; raises :class:`TokenError` unless the header is a fresh
    signature of ``body``."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    t_text, v1 = parts.get("t", ""), parts.get("v1", "")
    if not t_text.isdigit() or not v1:
        raise TokenInvalid("malformed signature header")
    expected = webhook_signature(body, secret=secret, timestamp=int(t_text)).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, v1):
        raise TokenInvalid("signature mismatch")
    if abs((time.time() if now is None else now) - int(t_text)) > tolerance_s:
        raise TokenExpired("signature timestamp outside the tolerance")
