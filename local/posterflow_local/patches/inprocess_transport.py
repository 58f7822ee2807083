"""In-process transport from this process's boto3 clients to the embedded AWS.

Handlers, pollers and moto's Step Functions interpreter run in the same process as the
embedded AWS. Over loopback HTTP, each of their calls paid for urllib3, ``http.client``
header parsing on both ends, werkzeug's request handler and a thread hand-off: about a
third of a DynamoDB UpdateItem's CPU (bench/local_cloud.py, measured with py-spy). This
module answers botocore's ``before-send`` event by calling the same WSGI application the
HTTP server serves — faults and Lambda middleware included — with the request the HTTP
server would have built, so the client still serialises, signs, retries and parses
exactly as against AWS; only the socket is skipped. Requests to any other endpoint (the
API Gateway emulation, the real AWS) go over the network as usual.

The patch is botocore's list of built-in handlers with ``_send`` added (sessions created
while it is installed see it). Checked by tests/integration/test_local_inprocess_transport.py:
the same calls in-process and over HTTP give the same bodies, headers, errors and metadata.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

import botocore.handlers
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from moto.core.botocore_stubber import MockRawResponse
from moto.moto_server.werkzeug_app import (
    PRESERVED_HEADER_NAMES_ENVIRON_KEY,
    environ_key_for_header,
    should_preserve_original_header_name,
)

from posterflow_local.patches._patch import Patch, Replacement

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_apps: dict[str, WSGIApp] = {}
_lock = threading.Lock()


def serve(netloc: str, app: WSGIApp) -> None:
    """Answer requests to ``http://{netloc}`` from this process by calling ``app``.

    Only botocore sessions created after the patch is installed see the hook (botocore copies
    its built-in handlers when a session is made); the embedded AWS resets the library's
    cached clients right after, and clients made earlier keep working over HTTP."""
    PATCH.install()  # idempotent; ``install_all`` has normally done it already
    with _lock:
        _apps[netloc] = app


def stop(netloc: str) -> None:
    with _lock:
        _apps.pop(netloc, None)


def _send(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
    if not _apps:
        return None
    url = urlsplit(request.url)
    app = _apps.get(url.netloc)
    if app is None or url.scheme != "http":
        return None
    environ = _environ(request, url.netloc, url.path, url.query)
    captured: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured[:] = [status, headers]

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    status, headers = captured
    response_headers = HTTPHeaders()
    for name, value in headers:
        response_headers[name] = value  # appends: repeated headers stay repeated, as on the wire
    return AWSResponse(request.url, int(status.split(" ", 1)[0]), response_headers, MockRawResponse(body))


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    return b"".join(iter(lambda: body.read(1 << 20), b""))


def _environ(request: AWSPreparedRequest, netloc: str, path: str, query: str) -> dict[str, Any]:
    """The environ werkzeug's server (with moto's request handler) builds for this request."""
    data = _body_bytes(request.body)
    raw_uri = path + (f"?{query}" if query else "")
    host, _, port = netloc.partition(":")
    environ: dict[str, Any] = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(data),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "SERVER_SOFTWARE": "posterflow-inprocess",
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote(path).encode("utf-8").decode("latin-1"),
        "QUERY_STRING": query.encode("utf-8").decode("latin-1"),
        "REQUEST_URI": raw_uri.encode("utf-8").decode("latin-1"),
        "RAW_URI": raw_uri.encode("utf-8").decode("latin-1"),
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": 0,
        "SERVER_NAME": host,
        "SERVER_PORT": port or "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": netloc,
        "CONTENT_LENGTH": str(len(data)),
    }
    preserved_names: dict[str, str] = {}
    preserved_values: dict[str, list[str]] = {}
    dashed: set[str] = set()
    for name, raw_value in request.headers.items():
        value = raw_value.decode("latin-1") if isinstance(raw_value, bytes) else str(raw_value)
        value = value.replace("\r\n", "")
        if "_" in name:
            if should_preserve_original_header_name(name):
                key = environ_key_for_header(name)
                preserved_names.setdefault(key, name)
                preserved_values.setdefault(key, []).append(value)
            continue
        lowered = name.lower()
        if lowered in ("content-length", "host") or (lowered == "transfer-encoding" and "chunked" in value.lower()):
            # The body is handed over whole: its length is the length, and there is nothing to de-chunk.
            continue
        key = name.upper().replace("-", "_")
        if key != "CONTENT_TYPE":
            key = f"HTTP_{key}"
            if key in environ:
                value = f"{environ[key]},{value}"
        environ[key] = value
        dashed.add(environ_key_for_header(name))
    for key, values in preserved_values.items():
        if key not in dashed:
            environ[key] = ",".join(values)
        else:
            preserved_names.pop(key, None)
    environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = preserved_names
    return environ


def _replacements() -> list[Replacement]:
    # A new list, so removing the patch puts botocore's own list object back.
    handlers = [h for h in botocore.handlers.BUILTIN_HANDLERS if h[1] is not _send]
    return [Replacement(botocore.handlers, "BUILTIN_HANDLERS", [*handlers, ("before-send", _send)])]


PATCH = Patch("inprocess_transport", _replacements)
