"""``posterflow demo``: the main job end to end on the local cloud.

Boots the local cloud, uploads the sample template, submits the 200-row speakers CSV as a
poster batch through the REST API (as the Django backend would), follows its progress, and
writes the posters and a summary under ``./out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from posterflow import resources as r

EVENTS = r.REPO_ROOT / "events"
TEMPLATE = EVENTS / "templates" / "speaker.html"
SPEAKERS = EVENTS / "inputs" / "speakers.csv"
FINAL = {"completed", "completed_with_errors", "failed", "cancelled"}


def _call(base: str, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{base}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def progress_bar(done: int, total: int, started: float, width: int = 32, label: str = "posters") -> str:
    frac = done / total if total else 1.0
    elapsed = max(time.perf_counter() - started, 1e-6)
    rate = done / elapsed
    eta = (total - done) / rate if rate > 0 else float("inf")
    bar = "█" * int(frac * width) + "░" * (width - int(frac * width))
    eta_txt = f"{eta:4.0f}s" if eta != float("inf") else "   ?s"
    return f"\r{label:8} {bar} {done:>5}/{total:<5} {frac * 100:5.1f}%  {rate:6.1f}/s  ETA {eta_txt}"


def follow(base: str, job_id: str, total: int, label: str, started: float) -> dict[str, Any]:
    """Poll the job until every item has landed and the job reached a final status."""
    interactive = sys.stderr.isatty()
    last_line = ""
    landed_at: float | None = None
    while True:
        job = _call(base, "GET", f"/api/jobs/{job_id}?limit=1")
        line = progress_bar(job["processed_items"], total, started, label=label)
        if interactive:
            print(line, end="", file=sys.stderr, flush=True)
        elif line.split("%")[0] != last_line.split("%")[0]:
            last_line = line
        if job["processed_items"] >= total and landed_at is None:
            landed_at = time.perf_counter()
        # Every item landed; the finalize workflow then sets the final status. Do not wait
        # forever on it: a demo that hangs tells nobody anything.
        finalize_stuck = landed_at is not None and time.perf_counter() - landed_at > 60
        if finalize_stuck:
            print(f"\nwarning: job still {job['status']!r} 60 s after its last item", file=sys.stderr)
        if job["processed_items"] >= total and (job["status"] in FINAL or finalize_stuck):
            if interactive:
                print(file=sys.stderr)
            else:
                print(line.strip(), file=sys.stderr)
            return dict(job)
        time.sleep(0.3)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        return [{k.strip().lower(): v for k, v in row.items()} for row in csv.DictReader(f)]


def run_demo(args: argparse.Namespace) -> int:
    from posterflow_local.cloud import CloudOptions, LocalCloud

    out: Path = args.out
    (out / "posters").mkdir(parents=True, exist_ok=True)
    print("posterflow demo: starting the local cloud …", file=sys.stderr)
    t_boot = time.perf_counter()
    with LocalCloud(CloudOptions(host=args.host, aws_port=args.aws_port, api_port=args.port,
                                 ws_port=args.ws_port, out_dir=out)) as cloud:
        base = cloud.gateway.rest_url
        print(f"  up in {time.perf_counter() - t_boot:.1f}s — API {base}, dashboard {base}/", file=sys.stderr)
        tpl = _call(base, "POST", "/api/templates/upload", {
            "section": "speaker", "name": "Conference speaker card", "html_content": TEMPLATE.read_text(),
            "set_as_active": True, "size": "instagram-square", "format": "jpeg"})
        print(f"  template {tpl['template_id']} with placeholders "
              f"{', '.join(p['name'] for p in tpl['placeholders'])}", file=sys.stderr)
        rows = read_rows(SPEAKERS)
        started = time.perf_counter()
        batch = _call(base, "POST", "/api/generate-batch", {
            "template_id": "speaker_latest", "items": rows, "name": "ServerlessConf speaker cards",
            "notify_email": "organiser@example.com"})
        job = follow(base, batch["job_id"], len(rows), "posters", started)
        elapsed = time.perf_counter() - started
        written = 0
        cursor: str | None = None
        while True:
            query = "?limit=1000" + (f"&cursor={cursor}" if cursor else "")
            page = _call(base, "GET", f"/api/jobs/{batch['job_id']}{query}")
            for result in page["results"]:
                if result["url"]:
                    suffix = Path(result["url"].split("?")[0]).suffix
                    (out / "posters" / f"{result['entity_id']}{suffix}").write_bytes(
                        urllib.request.urlopen(result["url"], timeout=30).read())
                    written += 1
            cursor = page.get("next")
            if not cursor:
                break
        mail = sorted((out / "mail").glob("*.eml")) if (out / "mail").exists() else []
        summary = {
            "job_id": batch["job_id"],
            "status": job["status"],
            "posters": {"total": job["total_items"], "succeeded": job["success_count"],
                        "failed": job["failure_count"], "seconds": round(elapsed, 2),
                        "per_s": round(job["total_items"] / elapsed, 1)},
            "files": {"posters": str((out / "posters").resolve()), "written": written,
                      "mail": [str(m.resolve()) for m in mail]},
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    ok = job["status"] in {"completed", "completed_with_errors"} and written == job["success_count"]
    return 0 if ok else 1
