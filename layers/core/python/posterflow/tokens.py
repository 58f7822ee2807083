"""HMAC tokens: per-job tokens (WebSocket progress), expiring download tokens (the email's
link) and webhook signatures.

Each kind of token signs its own prefix, so a token of one kind is never valid as another.
The secret comes from :func:`posterflow.config.signing_secret` unless one is passed in. Tokens
are signed with the secret's current version and verified against the current, then the
previous version, so rotating the secret does not void the links already sent: a token stays
valid for its lifetime across one rotation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator, Sequence

from posterflow import config
from posterflow.errors import PosterflowError, Reason

DOWNLOAD_TTL_S = 7 * 24 * 3600


class TokenError(PosterflowError):
    """A token that does not grant access; the message is safe to show to the caller."""

    reason = Reason.INVALID_TOKEN


class TokenInvalid(TokenError):
    """Malformed or tampered with (the signature does not match)."""


class TokenExpired(TokenError):
    """Genuine, but past its expiry."""

    reason = Reason.LINK_EXPIRED


def _sign(message: str, secret: bytes | None) -> bytes:
    return hmac.new(secret if secret is not None else config.signing_secret(), message.encode(),
                    hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _verification_keys(secret: bytes | None) -> Iterator[bytes]:
    """The keys a presented token may be signed with, most likely first, read lazily so a good
    token costs no more than before: the secret passed in (and only it), or the signing
    secret's current version, its previous version, then both re-read once (rate-limited) in
    case this instance's cached copy predates a rotation another instance already sees."""
    if secret is not None:
        yield secret
        return
    yield config.signing_secret()
    previous = config.previous_signing_secret()
    if previous is not None:
        yield previous
    if config.refresh_signing_secret():
        yield config.signing_secret()
        previous = config.previous_signing_secret()
        if previous is not None:
            yield previous


def _matches(message: str, presented: str, secret: bytes | None) -> bool:
    # Compared as bytes: compare_digest raises TypeError on non-ASCII str, which a caller's
    # query string may well hold.
    given = presented.encode()
    return any(hmac.compare_digest(_b64(_sign(message, key)).encode(), given)
               for key in _verification_keys(secret))


def job_token(job_id: str, *, secret: bytes | None = None) -> str:
    """The token that lets a client follow one job's progress."""
    return _b64(_sign(f"job:{job_id}", secret))


def verify_job_token(job_id: str, token: str, *, secret: bytes | None = None) -> bool:
    return _matches(f"job:{job_id}", token, secret)


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
    if not sep or not (expires_text.isascii() and expires_text.isdigit()) or len(expires_text) > 12:
        raise TokenInvalid("the download link is malformed")
    if not _matches(f"download:{job_id}:{expires_text}", signature, secret):
        raise TokenInvalid("the download link is not valid for this job")
    expires = int(expires_text)
    if (time.time() if now is None else now) >= expires:
        raise TokenExpired("the download link has expired; ask for a new one")
    return expires


def _webhook_digest(body: bytes, secret: bytes, t: int) -> str:
    return hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def webhook_signature(body: bytes, *, secret: bytes | Sequence[bytes], timestamp: int | None = None) -> str:
    """The ``X-Posterflow-Signature`` header value: ``t=<unix>,v1=<hex hmac-sha256 of t.body>``.

    Given several secrets (current first, then previous), the header carries one ``v1`` per
    secret, so during a rotation a receiver holding either secret can verify the delivery."""
    t = int(time.time()) if timestamp is None else timestamp
    keys = [secret] if isinstance(secret, bytes) else list(secret)
    return ",".join([f"t={t}", *(f"v1={_webhook_digest(body, key, t)}" for key in keys)])


def verify_webhook_signature(body: bytes, header: str, *, secret: bytes, tolerance_s: int = 300,
                             now: float | None = None) -> None:
    """What a webhook receiver does; raises :class:`TokenError` unless the header is a fresh
    signature of ``body``."""
    pairs = [p.split("=", 1) for p in header.split(",") if "=" in p]
    t_text = next((v for k, v in pairs if k == "t"), "")
    signatures = [v.encode() for k, v in pairs if k == "v1" and v]
    if not (t_text.isascii() and t_text.isdigit()) or not signatures:
        raise TokenInvalid("malformed signature header")
    expected = _webhook_digest(body, secret, int(t_text)).encode()
    # Any one v1 matching is enough: a delivery made during a rotation carries one per secret.
    if not any(hmac.compare_digest(expected, v1) for v1 in signatures):
        raise TokenInvalid("signature mismatch")
    if abs((time.time() if now is None else now) - int(t_text)) > tolerance_s:
        raise TokenExpired("signature timestamp outside the tolerance")
