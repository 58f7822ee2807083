"""POST /api/batch/upload-zip: what the API spends before it answers, at the default 4 MiB limit.

In this process: the multipart parse (``posterflow.api.multipart``) and the central-directory
read (``routes_upload_zip.scan``, the splitter's reader and verdicts) of two bodies of about
4 MiB: ``photos`` (40 JPEG-sized entries) and ``tiny`` (the most entries 4 MiB can declare, each
a few bytes: the worst case for the directory read). With ``--end-to-end`` also the answer time
of seed 004's ``curl -F`` upload of the photos body on a local cloud started for the run.

Prints one JSON object (last line), times in milliseconds (best of ``--repeat``).

    .venv/bin/python bench/upload_zip.py [--repeat 5] [--end-to-end]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from posterflow.api import multipart, routes_upload_zip

LIMIT = 4 * 1024 * 1024
BOUNDARY = "------------------------bench0upload0zip"


def _zip(entries: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return out.getvalue()


def photos_zip() -> bytes:
    return _zip([(f"team/photo-{i:03d}.jpg", os.urandom(100 * 1024)) for i in range(40)])


def tiny_zip() -> bytes:
    # 101 bytes per entry (local and central headers with a 12-character name, 1 byte of data):
    # as many as fit in the limit.
    n = (LIMIT - 4096) // 101
    return _zip([(f"p/{i:06d}.jpg", b"x") for i in range(n)])


def form(data: bytes) -> bytes:
    head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="photos.zip"\r\n'
            "Content-Type: application/zip\r\n\r\n").encode()
    field = f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="projectId"\r\n\r\nproj-123'.encode()
    return head + data + field + f"\r\n--{BOUNDARY}--\r\n".encode()


def _best(fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return round(best * 1000, 1)


def in_process(repeat: int) -> dict[str, Any]:
    budget = multipart.Budget(max_body_bytes=LIMIT)
    out: dict[str, Any] = {}
    for name, data in (("photos", photos_zip()), ("tiny", tiny_zip())):
        body = form(data)
        summary = routes_upload_zip.scan(data)
        out[name] = {
            "body_bytes": len(body),
            "entries": summary.entries,
            "parse_ms": _best(lambda b=body: multipart.parse(b, f"multipart/form-data; boundary={BOUNDARY}", budget),
                              repeat),
            "scan_ms": _best(lambda d=data: routes_upload_zip.scan(d), repeat),
        }
    return out


def end_to_end(repeat: int) -> dict[str, Any]:
    from posterflow_local.cloud import CloudOptions, LocalCloud

    with tempfile.TemporaryDirectory() as tmp:
        cloud = LocalCloud(CloudOptions(aws_port=0, api_port=0, ws_port=0, out_dir=Path(tmp) / "out",
                                        function_logs=Path(tmp) / "out" / "logs"))
        cloud.start()
        try:
            (Path(tmp) / "photos.zip").write_bytes(photos_zip())
            url = f"{cloud.gateway.rest_url}/api/batch/upload-zip"
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                answer = subprocess.run(["curl", "-sS", "-X", "POST", url, "-F", "file=@photos.zip",
                                         "-F", "projectId=proj-123", "-F", "priority=5"],
                                        cwd=tmp, capture_output=True, text=True, check=True).stdout
                times.append(time.perf_counter() - t)
                assert json.loads(answer)["queued"] == 40, answer
            return {"photos_answer_ms_best": round(min(times) * 1000, 1),
                    "photos_answer_ms_first": round(times[0] * 1000, 1)}
        finally:
            cloud.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--end-to-end", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"limit_bytes": LIMIT, **in_process(args.repeat)}
    if args.end_to_end:
        result["local_cloud"] = end_to_end(args.repeat)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
