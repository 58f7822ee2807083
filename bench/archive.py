"""Results-archive throughput and memory: N outputs of S bytes → one streamed ZIP in S3.

The archiver (``posterflow.finalize.archive.build_archive``) runs in this process with real
boto3 clients against a minimal S3 endpoint in a child process. The endpoint serves every
output from one pre-generated buffer and counts, then discards, the uploaded parts, so the
figures are the archiver's own (HTTP + ZIP + multipart) and not the memory of an S3 emulator
holding gigabytes. ``--verify`` keeps the uploaded archive on disk and opens it with zipfile.

Prints one JSON object (last line) with ``mb_per_s`` (output megabytes per second) and
``peak_rss_mb`` (this process's peak resident set; the budget is 256 MB).

    .venv/bin/python bench/archive.py [--outputs 10000] [--size-kb 200] [--verify]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import tempfile
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

BUCKET = "bench-archive"


def _serve(port_queue: Any, size: int, sink: str | None) -> None:
    """The S3 endpoint: GET object, create / upload part / complete / abort multipart."""
    payload = os.urandom(size)  # random bytes: incompressible, like JPEG/PNG posters
    state = {"bytes": 0, "parts": 0}

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
            self._reply(200, payload, {"Content-Type": "image/jpeg", "ETag": '"bench"'})

        def do_HEAD(self) -> None:
            self._reply(404)

        def do_POST(self) -> None:
            query = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
            self._body()
            if "uploads" in query:
                xml = "<InitiateMultipartUploadResult><UploadId>u1</UploadId></InitiateMultipartUploadResult>"
                self._reply(200, xml.encode(), {"Content-Type": "application/xml"})
            else:
                xml = '<CompleteMultipartUploadResult><ETag>"done"</ETag></CompleteMultipartUploadResult>'
                self._reply(
                    200, xml.encode(), {"Content-Type": "application/xml", "x-bench-bytes": str(state["bytes"])}
                )

        def do_PUT(self) -> None:
            data = self._body()
            if self.headers.get("Content-Encoding", "").startswith("aws-chunked"):
                data = _decode_aws_chunked(data)
            state["bytes"] += len(data)
            state["parts"] += 1
            if sink:
                number = int(parse_qs(urlsplit(self.path).query)["partNumber"][0])
                Path(sink, f"{number:05d}.part").write_bytes(data)
            self._reply(200, b"", {"ETag": f'"p{state["parts"]}"'})

        def do_DELETE(self) -> None:
            self._reply(204)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def _decode_aws_chunked(data: bytes) -> bytes:
    """botocore's aws-chunked body (``<hex>\\r\\n<data>\\r\\n ... 0\\r\\n<trailers>``)."""
    out, pos = bytearray(), 0
    while True:
        end = data.index(b"\r\n", pos)
        n = int(data[pos:end].split(b";")[0], 16)
        if n == 0:
            return bytes(out)
        out += data[end + 2 : end + 2 + n]
        pos = end + 2 + n + 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--outputs", type=int, default=10_000)
    ap.add_argument("--size-kb", type=int, default=200)
    ap.add_argument("--verify", action="store_true", help="keep the archive on disk and check it with zipfile")
    args = ap.parse_args()
    size = args.size_kb * 1024

    sink = tempfile.mkdtemp(prefix="pf-bench-archive-") if args.verify else None
    ports: Any = mp.get_context("spawn").Queue()
    server = mp.get_context("spawn").Process(target=_serve, args=(ports, size, sink), daemon=True)
    server.start()
    port = ports.get(timeout=30)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POSTERFLOW_BUCKET": BUCKET,
            "POSTERFLOW_TABLE": "unused",
        }
    )

    from posterflow import jobs
    from posterflow.finalize import archive

    now = "2025-01-01T00:00:00.000000Z"
    job = jobs.Job(
        job_id="bench",
        kind="poster",
        status=jobs.JobStatus.PROCESSING,
        name="bench",
        total=args.outputs,
        processed=args.outputs,
        succeeded=args.outputs,
        token="t",
        created_at=now,
        updated_at=now,
        last_progress_at=0.0,
        expires_at=0,
    )

    def items() -> Any:
        # Generated on demand, like the pages the archiver reads from DynamoDB.
        for i in range(args.outputs):
            yield jobs.Item(
                job_id="bench",
                item_id=i,
                entity_id=f"entity-{i}",
                status=jobs.ItemStatus.SUCCEEDED,
                output_key=f"outputs/bench/{i:06d}.jpg",
                timings={"total_ms": 35.0},
                attempts=1,
                created_at=now,
                updated_at=now,
                finished_at=now,
            )

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    result = archive.build_archive(job, "archives/bench/results.zip", items())
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    server.terminate()

    verified = None
    if sink:
        zip_path = Path(sink, "archive.zip")
        with zip_path.open("wb") as out:
            for part in sorted(Path(sink).glob("*.part")):
                out.write(part.read_bytes())
                part.unlink()
        with zipfile.ZipFile(zip_path) as zf:
            names = zf.namelist()
            bad = zf.testzip()
        verified = bad is None and len(names) == args.outputs + 2
        zip_path.unlink()

    mb = args.outputs * size / 1e6
    print(
        json.dumps(
            {
                "benchmark": "archive",
                "outputs": args.outputs,
                "output_kb": args.size_kb,
                "input_mb": round(mb, 1),
                "archive_mb": round(result.bytes / 1e6, 1),
                "files": result.files,
                "seconds": round(elapsed, 2),
                "files_per_s": round(args.outputs / elapsed, 1),
                "rss_before_mb": round(rss_before, 1),
                "verified": verified,
                "mb_per_s": round(mb / elapsed, 1),
                "peak_rss_mb": round(peak, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
