"""Fetching what a request names, safely: ``data:`` URIs decoded with a size limit, and
``http(s)`` URLs fetched only where the network policy allows (every redirect hop checked
again, bodies capped). Which sources a tenant may name at all is :mod:`posterflow.net.sources`'s.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.error
import urllib.request
from urllib.parse import unquote_to_bytes, urljoin

from posterflow.net.errors import FetchError as FetchError
from posterflow.net.errors import FetchFailed as FetchFailed
from posterflow.net.errors import FetchRefused as FetchRefused
from posterflow.net.policy import NetPolicy

MAX_SOURCE_BYTES = 20 * 1024 * 1024

_DATA_URI = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^;,]*)*?)(?P<b64>;base64)?,(?P<data>.*)$", re.S
)


def decode_data_uri(uri: str) -> bytes:
    """The bytes of a ``data:[<mime>][;base64],<data>`` URI."""
    match = _DATA_URI.match(uri.strip())
    if not match:
        raise FetchRefused("not a data: URI")
    payload = match.group("data")
    if match.group("b64"):
        try:
            data = base64.b64decode(re.sub(r"\s+", "", unquote_to_bytes(payload).decode("ascii")), validate=True)
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise FetchFailed(f"invalid base64 in data: URI: {exc}") from exc
    else:
        data = unquote_to_bytes(payload)
    if len(data) > MAX_SOURCE_BYTES:
        raise FetchFailed(f"data: URI holds {len(data)} bytes; the limit is {MAX_SOURCE_BYTES}")
    return data


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # surfaced as an HTTPError; fetch_url follows redirects itself, re-checking each hop


_OPENER = urllib.request.build_opener(_NoRedirects)
MAX_REDIRECTS = 5


def fetch_url(url: str, policy: NetPolicy, *, what: str = "image", timeout_s: float = 10.0) -> bytes:
    """GET a source from an allow-listed URL; every redirect hop is checked again.

    Raises :class:`FetchRefused` for a blocked URL, :class:`FetchFailed` for an HTTP error
    (``logo URL answered 404``), a network failure or a body over :data:`MAX_SOURCE_BYTES`."""
    for _ in range(MAX_REDIRECTS + 1):
        decision = policy.check_blocking(url)
        if not decision.allowed:
            raise FetchRefused(f"{what} URL {url} is not allowed: {decision.reason}")
        try:
            with _OPENER.open(
                urllib.request.Request(url, headers={"User-Agent": "posterflow"}), timeout=timeout_s
            ) as rsp:
                data = rsp.read(MAX_SOURCE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            location = exc.headers.get("Location") if exc.code in (301, 302, 303, 307, 308) else None
            if location:
                url = urljoin(url, location)
                continue
            raise FetchFailed(f"{what} URL {url} answered {exc.code}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise FetchFailed(f"{what} URL {url} could not be fetched: {exc}") from exc
        if len(data) > MAX_SOURCE_BYTES:
            raise FetchFailed(f"{what} at {url} is larger than {MAX_SOURCE_BYTES} bytes")
        return data
    raise FetchFailed(f"{what} URL {url}: more than {MAX_REDIRECTS} redirects")
