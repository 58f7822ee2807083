"""The stream function's HTTP server: the standard library's ``ThreadingHTTPServer`` (nothing
else is shipped to Lambda), one thread per stream.

In AWS, Lambda Web Adapter (``AWS_LWA_INVOKE_MODE=response_stream``) turns each API Gateway
request into an HTTP request to this server on ``AWS_LWA_PORT`` and streams the answer back as
it is written; it passes API Gateway's request context as the ``x-amzn-request-context`` header.
The local cloud's gateway runs the same server in-process and proxies to it the same way.
Answers are chunked (``Transfer-Encoding: chunked``) and flushed frame by frame. The server
notices a client that went away (its socket reads EOF) within one poll interval and ends the
stream, so nothing keeps polling for nobody.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from posterflow import config, resources
from posterflow.api.errors import status_of
from posterflow.errors import PosterflowError, Reason
from posterflow.progress import sse

log = logging.getLogger(__name__)

MAX_CONTEXT_BYTES = 64 * 1024


def request_context(header: str | None) -> dict[str, Any]:
    """API Gateway's request context as Lambda Web Adapter passes it (JSON), or ``{}``."""
    if not header or len(header) > MAX_CONTEXT_BYTES:
        return {}
    try:
        value = json.loads(header)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class StreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "posterflow-stream"
    # Options for every JobStream of this server (tests shorten intervals).
    stream_options: ClassVar[dict[str, Any]] = {}

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # ---- answers ------------------------------------------------------------------------------
    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, exc: PosterflowError) -> None:
        self._json(status_of(exc.reason), {"error": {"code": exc.code, "message": exc.message,
                                                     "details": exc.details}})

    def _alive(self) -> bool:
        """False once the client closed its side (EOF) or the socket failed, or the server stops."""
        if getattr(self.server, "stopping", None) is not None and self.server.stopping.is_set():  # type: ignore[attr-defined]
            return False
        try:
            readable, _, broken = select.select([self.connection], [], [self.connection], 0)
            if broken:
                return False
            if readable:
                return bool(self.connection.recv(1, socket.MSG_PEEK))
        except (OSError, ValueError):
            return False
        return True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    # ---- routes -------------------------------------------------------------------------------
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == resources.LWA_READINESS_PATH:
            self._json(200, {"status": "ok", "service": "posterflow-stream"})
            return
        job_id = sse.route_job_id(url.path)
        if job_id is None:
            self._error(PosterflowError(f"no route {url.path}", reason=Reason.NO_ROUTE))
            return
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        identity = request_context(self.headers.get("x-amzn-request-context")).get("identity") or {}
        request = sse.StreamRequest(
            job_id=job_id,
            token=query.get("token"),
            api_key=self.headers.get("x-api-key"),
            api_key_id=str(identity.get("apiKeyId") or "") or None,
            # EventSource sends the header; a query fallback serves clients that cannot.
            last_event_id=self.headers.get("Last-Event-ID") or query.get("lastEventId"),
        )
        try:
            stream = sse.open_stream(request, **self.stream_options)
        except PosterflowError as exc:
            self._error(exc)
            return
        if stream.status == 204:
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Accel-Buffering", "no")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        chunks = stream.chunks(alive=self._alive)
        try:
            for data in chunks:
                self._chunk(data)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            log.info("stream client of job %s went away", job_id)
        finally:
            chunks.close()
            self.close_connection = True


class StreamServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Set by stop(): every open stream ends at its next poll.
        self.stopping = threading.Event()


def make_server(host: str = "127.0.0.1", port: int | None = None,
                stream_options: dict[str, Any] | None = None) -> StreamServer:
    """A server on ``port`` (default ``AWS_LWA_PORT``; 0 picks a free one)."""
    handler: type[StreamHandler] = type("BoundStreamHandler", (StreamHandler,),
                                        {"stream_options": dict(stream_options or {})})
    return StreamServer((host, config.lwa_port() if port is None else port), handler)


def start_in_thread(host: str = "127.0.0.1", port: int = 0,
                    stream_options: dict[str, Any] | None = None) -> tuple[StreamServer, Callable[[], None]]:
    """The server in a background thread (the local cloud's way of running the function);
    returns it and a function that stops it."""
    server = make_server(host, port, stream_options)
    thread = threading.Thread(target=server.serve_forever, name="stream-function", daemon=True)
    thread.start()

    def stop() -> None:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(5)

    return server, stop


def serve(host: str = "127.0.0.1") -> None:
    """Run until the process ends (Lambda Web Adapter starts this through ``run.sh``)."""
    make_server(host).serve_forever()
