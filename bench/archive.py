"""Results-archive throughput and memory: N outputs of S bytes → one streamed ZIP in S3.

The archiver (``posterflow.finalize.archive.build_archive``) runs in this process with real
boto3 clients against a minimal S3 endpoint in a child process. The endpoint (``bench/s3_stub.py``) serves every
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
from pathlib import Path
from typing import Any

import s3_stub  # bench/s3_stub.py, beside this script

BUCKET = "bench-archive"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--outputs", type=int, default=10_000)
    ap.add_argument("--size-kb", type=int, default=200)
    ap.add_argument("--verify", action="store_true", help="keep the archive on disk and check it with zipfile")
    args = ap.parse_args()
    size = args.size_kb * 1024

    sink = tempfile.mkdtemp(prefix="pf-bench-archive-") if args.verify else None
    ports: Any = mp.get_context("spawn").Queue()
    # Random bytes: incompressible, like JPEG/PNG posters.
    server = mp.get_context("spawn").Process(target=s3_stub.serve, args=(ports, os.urandom(size), "image/jpeg", sink),
                                             daemon=True)
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
