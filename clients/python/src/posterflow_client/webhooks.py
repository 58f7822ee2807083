"""Verifying posterflow's webhooks.

Each delivery is a JSON POST with ``X-Posterflow-Signature: t=<unix>,v1=<hex>``, where the hex
is HMAC-SHA256 of ``"<t>.<raw body>"`` keyed with the caller's webhook secret
(``Client.webhook_secret()``). During a rotation of the server's signing secret a delivery
carries one ``v1=`` per secret: any one matching is enough. Verify the *raw* body (Django:
``request.body``), before parsing it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from posterflow_client.errors import InvalidPayload, InvalidSignature

SIGNATURE_HEADER = "X-Posterflow-Signature"
DEFAULT_TOLERANCE_S = 300


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def _digest(body: bytes, key: bytes, t: int) -> str:
    return hmac.new(key, f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str | bytes | Sequence[str | bytes], *, timestamp: int | None = None) -> str:
    """The header value posterflow sends for ``body`` (for tests of your receiver); several
    secrets give one ``v1=`` each, as during a rotation."""
    t = int(time.time()) if timestamp is None else timestamp
    keys = [secret] if isinstance(secret, str | bytes) else list(secret)
    return ",".join([f"t={t}", *(f"v1={_digest(body, _key(k), t)}" for k in keys)])


def verify(body: bytes, signature_header: str | None, secret: str | bytes, tolerance_s: float = DEFAULT_TOLERANCE_S,
           *, now: float | None = None) -> dict[str, Any]:
    """The delivery's JSON body, once its signature is checked.

    Raises :class:`InvalidSignature` when the header is missing or malformed
    (``reason="malformed"``), no ``v1`` matches (``"mismatch"``), or its timestamp is more
    than ``tolerance_s`` from now (``"stale"``, checked after the signature, so an edited
    timestamp reads as a mismatch); :class:`InvalidPayload` when a genuine body is not a JSON
    object. Digests are compared in constant time."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError("verify the raw request body (bytes), not a parsed or decoded one")
    raw = bytes(body)
    if not signature_header:
        raise InvalidSignature(f"no {SIGNATURE_HEADER} header", reason="malformed")
    pairs = [part.strip().split("=", 1) for part in signature_header.split(",") if "=" in part]
    stamps = [v.strip() for k, v in pairs if k.strip() == "t"]
    signatures = [v.strip().encode("ascii", "replace") for k, v in pairs if k.strip() == "v1" and v.strip()]
    if len(stamps) != 1 or not (stamps[0].isascii() and stamps[0].isdigit()) or len(stamps[0]) > 12 or not signatures:
        raise InvalidSignature(f"malformed {SIGNATURE_HEADER} header", reason="malformed")
    t = int(stamps[0])
    expected = _digest(raw, _key(secret), t).encode()
    # Every candidate is compared (no early exit on the first match).
    matches = [hmac.compare_digest(expected, candidate) for candidate in signatures]
    if not any(matches):
        raise InvalidSignature("signature does not match the body", reason="mismatch")
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        raise InvalidSignature(f"signature timestamp is more than {tolerance_s:g} s away", reason="stale")
    try:
        payload = json.loads(raw)
    except ValueError:
        raise InvalidPayload("webhook body is not JSON") from None
    if not isinstance(payload, dict):
        raise InvalidPayload("webhook body is not a JSON object")
    return payload


class _Request(Protocol):
    @property
    def body(self) -> bytes: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


def verify_request(request: _Request, secret: str | bytes, tolerance_s: float = DEFAULT_TOLERANCE_S) -> dict[str, Any]:
    """:func:`verify` for a request object with ``.body`` and case-insensitive ``.headers``
    (a Django ``HttpRequest``)."""
    return verify(request.body, request.headers.get(SIGNATURE_HEADER), secret, tolerance_s)
