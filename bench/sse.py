"""Server-Sent Events job streams on the local cloud: what the frame log costs the progress
function, and how far behind the table a stream's client is.

One local cloud on free ports; a 540×540 JPEG template; ``--items`` posters through
``POST /api/generate-batch``. A client opens the job's stream (``sse_endpoint``, through the
local gateway's chunked proxy) right after submitting and reads it to ``job_completed``.

- ``log_append_ms``: time the progress function spent in ``sse_log.append`` (the frame log's
  BatchWriteItem + head update) over the whole job, and ``log_entries`` written;
- ``handle_records_ms``: all the progress function's stream-batch time (frame log + WebSocket
  side), for scale;
- ``end_lag_ms``: the job record's ``completed_at`` → the client reading ``job_completed``;
- ``item_lag_ms``: per poster, its item record's ``finished_at`` → the client reading its
  ``poster_completed`` (median, p95, max);
- ``frames``, ``bytes``: what the client read.

Prints JSON lines; the last is the summary.

    .venv/bin/python bench/sse.py [--items 200] [--runs 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

TEMPLATE = ("<html><body style='margin:0;width:540px;height:540px;background:#1d3557;font-family:sans-serif;"
            "color:#fff'><h1 style='padding:48px'>{{ name }}</h1></body></html>")
SECTION = "bench-sse"


def _post(base: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return dict(json.loads(resp.read()))


def _epoch(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None


def _read_stream(base: str, path: str) -> tuple[list[tuple[float, str, dict[str, Any]]], int]:
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=300)
    conn.request("GET", path, headers={"Accept": "text/event-stream"})
    resp = conn.getresponse()
    assert resp.status == 200, resp.status
    events: list[tuple[float, str, dict[str, Any]]] = []
    size, block = 0, ""
    while True:
        line = resp.readline()
        if not line:
            break
        size += len(line)
        text = line.decode()
        if text.strip():
            block += text
            continue
        fields = dict(part.split(": ", 1) for part in block.strip().split("\n") if ": " in part)
        block = ""
        if "data" in fields:
            events.append((time.time(), fields.get("event", "message"), json.loads(fields["data"])))
            if fields.get("event") in ("job_completed", "job_failed"):
                break
    conn.close()
    return events, size


def run(cloud: Any, items: int, tag: str) -> dict[str, Any]:
    from posterflow import jobs
    from posterflow.progress import sse_log

    spent = {"append": 0.0, "entries": 0}
    original = sse_log.append

    def timed(changes: Any, **kwargs: Any) -> int:
        started = time.perf_counter()
        try:
            n = original(changes, **kwargs)
            spent["entries"] += n
            return n
        finally:
            spent["append"] += time.perf_counter() - started

    sse_log.append = timed  # type: ignore[assignment]
    try:
        base = cloud.gateway.rest_url
        rows = [{"name": f"Person {i}", "entity_id": f"{tag}{i}"} for i in range(items)]
        job = _post(base, "/api/generate-batch", {"template_id": f"{SECTION}_latest", "items": rows})
        events, size = _read_stream(base, job["sse_endpoint"])
    finally:
        sse_log.append = original  # type: ignore[assignment]
    record = jobs.get_job(job["job_id"])
    finished = {i.entity_id: _epoch(i.finished_at) for i in jobs.iter_items(record.job_id)}
    lags = [1000 * (at - finished[data["entity_id"]]) for at, name, data in events
            if name == "poster_completed" and finished.get(data["entity_id"]) is not None]
    end_at = next(at for at, name, _ in events if name == "job_completed")
    completed = _epoch(record.completed_at)
    return {
        "items": items,
        "frames": len(events),
        "poster_completed": sum(1 for _, name, _ in events if name == "poster_completed"),
        "bytes": size,
        "log_entries": spent["entries"],
        "log_append_ms": round(1000 * spent["append"], 1),
        "end_lag_ms": round(1000 * (end_at - completed), 1) if completed else None,
        "item_lag_ms": {"median": round(statistics.median(lags), 1),
                        "p95": round(sorted(lags)[int(0.95 * len(lags)) - 1], 1),
                        "max": round(max(lags), 1)} if lags else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()

    from posterflow_local.cloud import CloudOptions, LocalCloud

    with tempfile.TemporaryDirectory() as out, LocalCloud(CloudOptions(aws_port=0, api_port=0, ws_port=0,
                                                                       out_dir=Path(out),
                                                                       function_logs=Path(out) / "logs")) as cloud:
        _post(cloud.gateway.rest_url, "/api/templates/upload", {
            "section": SECTION, "name": "SSE bench", "html_content": TEMPLATE, "set_as_active": True,
            "width": 540, "height": 540, "format": "jpeg"})
        run(cloud, 20, "warm")  # warm render instances, as Lambda keeps them between jobs
        results = []
        for i in range(args.runs):
            result = run(cloud, args.items, f"r{i}")
            print(json.dumps(result), flush=True)
            results.append(result)
        print(json.dumps({
            "summary": True, "items": args.items, "runs": len(results),
            "log_append_ms": [r["log_append_ms"] for r in results],
            "log_append_ms_per_item": [round(r["log_append_ms"] / args.items, 3) for r in results],
            "end_lag_ms": [r["end_lag_ms"] for r in results],
            "item_lag_ms_median": [r["item_lag_ms"]["median"] if r["item_lag_ms"] else None for r in results],
            "bytes_per_poster": [round(r["bytes"] / args.items) for r in results],
            "every_poster_once": all(r["poster_completed"] == args.items for r in results),
        }), flush=True)


if __name__ == "__main__":
    main()
