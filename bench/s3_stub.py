"""A minimal S3 endpoint for benchmarks that measure our own streaming code, not an emulator.

GET answers every key with one payload; multipart create / upload part / complete / abort are
accepted and the parts counted, then discarded (or kept in ``sink`` for a ``--verify`` run).
``bench/archive.py`` and ``bench/merged_pdf.py`` run it in a child process (``serve``), so the
figures (peak RSS above all) are those of the code under test alone.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


def decode_aws_chunked(data: bytes) -> bytes:
    """botocore's aws-chunked body (``<hex>\\r\\n<data>\\r\\n ... 0\\r\\n<trailers>``)."""
    out, pos = bytearray(), 0
    while True:
        end = data.index(b"\r\n", pos)
        n = int(data[pos:end].split(b";")[0], 16)
        if n == 0:
            return bytes(out)
        out += data[end + 2 : end + 2 + n]
        pos = end + 2 + n + 2


def serve(port_queue: Any, payload: bytes, content_type: str, sink: str | None) -> None:
    """Serve on a free loopback port (put on ``port_queue``) until the process ends. Parts kept
    in ``sink`` are named ``<upload id>-<part number>.part``; the complete answer carries the
    uploaded byte count in ``x-bench-bytes``."""
    state = {"bytes": 0, "parts": 0, "uploads": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = bytearray()
                while True:
                    n = int(self.rfile.readline().split(b";")[0], 16)
                    if n == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return bytes(out)
                    out += self.rfile.read(n)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._reply(200, payload, {"Content-Type": content_type, "ETag": '"bench"'})

        def do_HEAD(self) -> None:
            self._reply(404)

        def do_POST(self) -> None:
            query = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
            self._body()
            if "uploads" in query:
                state["uploads"] += 1
                xml = (f"<InitiateMultipartUploadResult><UploadId>u{state['uploads']}</UploadId>"
                       "</InitiateMultipartUploadResult>")
                self._reply(200, xml.encode(), {"Content-Type": "application/xml"})
            else:
                xml = '<CompleteMultipartUploadResult><ETag>"done"</ETag></CompleteMultipartUploadResult>'
                self._reply(200, xml.encode(),
                            {"Content-Type": "application/xml", "x-bench-bytes": str(state["bytes"])})

        def do_PUT(self) -> None:
            data = self._body()
            if self.headers.get("Content-Encoding", "").startswith("aws-chunked"):
                data = decode_aws_chunked(data)
            state["bytes"] += len(data)
            state["parts"] += 1
            if sink:
                q = parse_qs(urlsplit(self.path).query)
                upload, number = q["uploadId"][0], int(q["partNumber"][0])
                Path(sink, f"{upload}-{number:05d}.part").write_bytes(data)
            self._reply(200, b"", {"ETag": f'"p{state["parts"]}"'})

        def do_DELETE(self) -> None:
            self._reply(204)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()
