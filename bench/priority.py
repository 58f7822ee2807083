"""Priority lanes on the local cloud: an urgent job behind a large normal job, and what the
urgent job costs the normal one.

One local cloud on free ports; a 540×540 JPEG poster template; every job goes through
``POST /api/generate-batch`` → SQS (the job's lane) → ``fn render`` → S3 + DynamoDB → finalize.

1. warm-up: a small normal and a small urgent batch (each render instance gets its first
   pages, as Lambda keeps warm instances between batches);
2. ``urgent_idle_s``: a ``--urgent``-item priority-1 job on an idle system, submit → completed,
   the median of ``--idle-runs`` runs;
3. ``normal_alone``: a ``--items``-item normal job, its throughput (items / seconds until every
   item landed);
4. ``normal_with_urgent``: the same normal job, with the urgent job submitted once
   ``--head-start`` of its items have landed; ``urgent_behind_s`` is the urgent job's submit →
   completed. Phases 3 and 4 alternate (alone, with, alone, … ``--rounds`` runs with), and each
   run with the urgent job is compared with the mean of the runs alone just before and after
   it: the shared machine's load moves by minutes.

Prints JSON lines; the last is the summary with ``urgent_ratio`` = urgent_behind_s /
urgent_idle_s (median over the rounds; goal ≤ 2.5) and ``normal_throughput_ratio`` = the normal
job's throughput with the urgent job / without it (median; goal ≥ 0.9).

    .venv/bin/python bench/priority.py [--items 600] [--urgent 20] [--idle-runs 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

TEMPLATE = ("<html><body style='margin:0;width:540px;height:540px;background:linear-gradient(135deg,#1d3557,#457b9d);"
            "font-family:sans-serif;color:#fff'><div style='padding:48px'><h1 style='font-size:44px'>{{ title }}</h1>"
            "<p style='font-size:26px'>{{ message }}</p><p style='font-size:22px;opacity:.8'>— {{ name }}</p>"
            "</div></body></html>")
SECTION = "bench-priority"
POLL_S = 0.05


def _post(base: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return dict(json.loads(resp.read()))


def _rows(n: int, tag: str) -> list[dict[str, str]]:
    return [{"title": "Thank you", "message": f"Poster {i} of job {tag}: the session was great.",
             "name": f"Person {i}", "entity_id": f"{tag}{i}"} for i in range(n)]


def _submit(base: str, n: int, tag: str, priority: int | None = None) -> str:
    body: dict[str, Any] = {"template_id": f"{SECTION}_latest", "items": _rows(n, tag)}
    if priority is not None:
        body["priority"] = priority
    return str(_post(base, "/api/generate-batch", body)["job_id"])


def _wait(job_id: str, timeout_s: float, *, landed: int | None = None) -> tuple[float, Any]:
    """Seconds (perf_counter) when the job is final, or when ``landed`` items have landed."""
    from posterflow import jobs

    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        job = jobs.get_job(job_id)
        if (landed is not None and job.processed >= landed) or (landed is None and job.is_final):
            return time.perf_counter(), job
        time.sleep(POLL_S)
    raise RuntimeError(f"job {job_id} did not get there within {timeout_s} s")


def urgent_alone(base: str, n: int, timeout_s: float, tag: str) -> float:
    started = time.perf_counter()
    job_id = _submit(base, n, tag, priority=1)
    done, job = _wait(job_id, timeout_s)
    if job.status != "completed":
        raise RuntimeError(f"urgent job {job_id} ended {job.status}")
    return done - started


def normal_job(base: str, items: int, timeout_s: float, tag: str, *, urgent: int = 0,
               head_start: int = 0) -> dict[str, Any]:
    """The normal job's throughput; with ``urgent``, an urgent job submitted once ``head_start``
    items of the normal job have landed, and that job's submit → completed."""
    started = time.perf_counter()
    job_id = _submit(base, items, tag)
    out: dict[str, Any] = {"phase": "normal_with_urgent" if urgent else "normal_alone", "items": items}
    if urgent:
        _wait(job_id, timeout_s, landed=head_start)
        from posterflow import jobs

        out["normal_landed_at_urgent_submit"] = jobs.get_job(job_id).processed
        out["urgent_behind_s"] = round(urgent_alone(base, urgent, timeout_s, f"{tag}u"), 3)
        out["normal_landed_at_urgent_done"] = jobs.get_job(job_id).processed
    landed, _ = _wait(job_id, timeout_s, landed=items)
    done, job = _wait(job_id, timeout_s)
    out.update({"status": str(job.status), "succeeded": job.succeeded,
                "all_items_s": round(landed - started, 2), "completed_s": round(done - started, 2),
                "items_per_s": round(items / (landed - started), 2)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=600, help="items of the normal job (over 500: via the splitter)")
    ap.add_argument("--urgent", type=int, default=20, help="items of the urgent (priority 1) job")
    ap.add_argument("--idle-runs", type=int, default=3)
    ap.add_argument("--head-start", type=int, default=60, help="normal items landed before the urgent job")
    ap.add_argument("--rounds", type=int, default=2, help="runs of the normal job with the urgent one")
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()

    from posterflow_local.cloud import CloudOptions, LocalCloud

    out_dir = Path(tempfile.mkdtemp(prefix="pf-bench-priority-"))
    with LocalCloud(CloudOptions(aws_port=0, api_port=0, ws_port=0, out_dir=out_dir,
                                 function_logs=out_dir / "logs")) as cloud:
        base = cloud.gateway.rest_url
        _post(base, "/api/templates/upload", {"section": SECTION, "name": "bench", "html_content": TEMPLATE,
                                              "format": "jpeg", "width": 540, "height": 540})
        _wait(_submit(base, 40, "warm"), args.timeout)
        _wait(_submit(base, 40, "warmu", priority=1), args.timeout)
        idle = [urgent_alone(base, args.urgent, args.timeout, f"idle{i}") for i in range(args.idle_runs)]
        print(json.dumps({"phase": "urgent_idle", "items": args.urgent, "seconds": [round(s, 3) for s in idle],
                          "load_avg_1m": round(os.getloadavg()[0], 2)}), flush=True)
        # Alone, with, alone, with, … alone: each run with the urgent job is compared with the
        # runs alone just before and after it, as the shared machine's load drifts.
        alone: list[dict[str, Any]] = []
        mixed: list[dict[str, Any]] = []
        for r in range(args.rounds + 1):
            alone.append(normal_job(base, args.items, args.timeout, f"alone{r}"))
            print(json.dumps({**alone[-1], "load_avg_1m": round(os.getloadavg()[0], 2)}), flush=True)
            if r < args.rounds:
                mixed.append(normal_job(base, args.items, args.timeout, f"mixed{r}", urgent=args.urgent,
                                        head_start=args.head_start))
                print(json.dumps({**mixed[-1], "load_avg_1m": round(os.getloadavg()[0], 2)}), flush=True)

    urgent_idle_s = statistics.median(idle)
    urgent_ratios = [m["urgent_behind_s"] / urgent_idle_s for m in mixed]
    throughput_ratios = [m["items_per_s"] / statistics.mean((alone[i]["items_per_s"], alone[i + 1]["items_per_s"]))
                         for i, m in enumerate(mixed)]
    print(json.dumps({
        "benchmark": "priority", "normal_items": args.items, "urgent_items": args.urgent, "format": "jpeg",
        "size": "540x540", "rounds": args.rounds,
        "urgent_idle_s": round(urgent_idle_s, 3), "urgent_behind_s": [m["urgent_behind_s"] for m in mixed],
        "urgent_ratio": round(statistics.median(urgent_ratios), 3),
        "urgent_ratios": [round(x, 3) for x in urgent_ratios],
        "normal_landed_at_urgent_done": [m["normal_landed_at_urgent_done"] for m in mixed],
        "normal_alone_per_s": [a["items_per_s"] for a in alone],
        "normal_with_urgent_per_s": [m["items_per_s"] for m in mixed],
        "normal_throughput_ratio": round(statistics.median(throughput_ratios), 3),
        "normal_throughput_ratios": [round(x, 3) for x in throughput_ratios],
        "goals": {"urgent_ratio": "<= 2.5", "normal_throughput_ratio": ">= 0.9"},
        "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
