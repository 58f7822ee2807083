"""Poster batches on the local cloud under faults, and the audit that checks nothing was lost
or counted twice. Shared by the reliability tests and ``bench/reliability.py``."""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from posterflow import aws, config, jobs
from posterflow_local.cloud import LocalCloud
from posterflow_local.faults import FaultConfig
from tests.integration.helpers import api, wait_for

# A trivial template: these tests are about the machinery, not the pixels.
HTML = "<html><body style='margin:0;background:#135'><b style='color:#fff'>{{ name }}</b></body></html>"
POISON_REASON = "missing_placeholders"


def upload_template(cloud: LocalCloud) -> str:
    section = f"rel-{uuid.uuid4().hex[:8]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": "reliability", "html_content": HTML, "set_as_active": True,
        "width": 64, "height": 64})
    assert status == 201, body
    return section


def batch_items(n: int, poison_every: int) -> tuple[list[dict[str, Any]], set[str]]:
    """``n`` items; every ``poison_every``-th lacks its placeholder (a bad row, not a retry)."""
    items: list[dict[str, Any]] = []
    poison: set[str] = set()
    for i in range(n):
        entity = f"e{i:05d}"
        if poison_every and i % poison_every == poison_every - 1:
            items.append({"entity_id": entity, "other": "no name here"})
            poison.add(entity)
        else:
            items.append({"entity_id": entity, "name": f"n{i}"})
    return items, poison


def submit(cloud: LocalCloud, section: str, items: list[dict[str, Any]]) -> str:
    # Not through ``api``: its 120 s socket timeout is shorter than a 10,000-item request
    # takes on 2 busy cores (the local API Gateway does not enforce AWS's 29 s either).
    request = urllib.request.Request(
        f"{cloud.gateway.rest_url}/api/generate-batch", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"template_id": f"{section}_latest", "items": items, "format": "jpeg", "quality": 60}).encode())
    with urllib.request.urlopen(request, timeout=1800) as resp:
        status, body = resp.status, json.loads(resp.read())
    assert status == 202, body
    return str(body["job_id"])


def wait_final(job_id: str, timeout: float) -> jobs.Job:
    def final() -> jobs.Job | None:
        job = jobs.get_job(job_id)
        return job if job.is_final else None

    result: jobs.Job = wait_for(final, timeout=timeout, interval=0.5, what=f"job {job_id} to finish")
    return result


def finalize_executions(job_id: str) -> list[str]:
    """Executions of the finalize state machine named after this job (any round)."""
    sfn = aws.client("stepfunctions")
    names: list[str] = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=config.state_machine_arn("finalize")):
        names += [e["name"] for e in page["executions"]
                  if e["name"] == job_id or e["name"].startswith(f"{job_id}-retry")]
    return names


@dataclass
class Audit:
    """What the item records say against what the job's counters say."""

    items: int
    total: int
    processed: int
    succeeded_counter: int
    failed_counter: int
    by_status: dict[str, int]
    lost: int
    """Items still pending, or missing from the item records."""
    double_counted: int
    """Counts beyond one per item: counter excess over the records, and items counted twice."""
    failed_without_reason: list[int]
    wrong_outcome: list[str]
    """Entities whose outcome does not match their input (poison succeeded, good failed)."""
    finalize_executions: int
    status: str

    def problems(self) -> list[str]:
        out = []
        if self.lost:
            out.append(f"{self.lost} items lost")
        if self.double_counted:
            out.append(f"{self.double_counted} double counts")
        if self.failed_without_reason:
            out.append(f"failed without reason: {self.failed_without_reason[:10]}")
        if self.wrong_outcome:
            out.append(f"wrong outcome: {self.wrong_outcome[:10]}")
        if self.succeeded_counter != self.by_status.get("succeeded", 0):
            out.append(f"succeeded counter {self.succeeded_counter} != records {self.by_status.get('succeeded', 0)}")
        if self.failed_counter != self.by_status.get("failed", 0):
            out.append(f"failed counter {self.failed_counter} != records {self.by_status.get('failed', 0)}")
        if self.finalize_executions != 1:
            out.append(f"{self.finalize_executions} finalize executions")
        return out


def audit(job_id: str, expected_items: int, poison: set[str]) -> Audit:
    job = jobs.get_job(job_id)
    records = list(jobs.iter_items(job_id, consistent=True))
    by_status = Counter(str(item.status) for item in records)
    # ``attempts`` moves in the same transaction as the count, so > 1 means counted twice.
    counted_twice = sum(max(0, item.attempts - 1) for item in records)
    terminal = sum(n for s, n in by_status.items() if s != "pending")
    wrong = []
    for item in records:
        expect_fail = item.entity_id in poison
        if item.status == "succeeded" and expect_fail:
            wrong.append(f"{item.entity_id}: succeeded without its placeholder")
        elif item.status == "failed" and not expect_fail:
            wrong.append(f"{item.entity_id}: {item.error}")
        elif item.status == "failed" and item.error_code != POISON_REASON:
            wrong.append(f"{item.entity_id}: failed for another reason: {item.error}")
    return Audit(
        items=len(records), total=job.total or 0, processed=job.processed,
        succeeded_counter=job.succeeded, failed_counter=job.failed, by_status=dict(by_status),
        lost=by_status.get("pending", 0) + max(0, expected_items - len(records)),
        double_counted=counted_twice + max(0, job.processed - terminal),
        failed_without_reason=[i.item_id for i in records if i.status == "failed" and not (i.error and i.error_code)],
        wrong_outcome=wrong, finalize_executions=len(finalize_executions(job_id)), status=str(job.status),
    )


@dataclass
class Figures:
    scenario: str
    items: int
    poison: int
    succeeded: int
    failed: int
    lost: int
    double_counted: int
    redelivered: int
    """Messages a failure or fault left on the render queue (each came back)."""
    faults: dict[str, Any] = field(default_factory=dict)
    engine: dict[str, int] = field(default_factory=dict)
    finalize_executions: int = 0
    wall_s: float = 0.0
    """Submit to the job's final status (finalize included)."""
    items_wall_s: float = 0.0
    """Submit to the last item landing."""

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def render_poller_stats(cloud: LocalCloud) -> tuple[int, int]:
    """(records, failed records) of the render queue's pollers so far."""
    assert cloud.refs is not None
    url = cloud.refs.queue_urls["render"]
    pollers = [p for p in cloud.sqs_pollers if p.queue_url == url]
    return sum(p.stats.records for p in pollers), sum(p.stats.failed_records for p in pollers)


def engine_stats() -> dict[str, int]:
    from posterflow.render.engine import get_engine

    s = get_engine().stats
    return {"launches": s.launches, "crashes": s.crashes, "renders": s.renders, "failures": s.failures}


def run_batch(cloud: LocalCloud, *, scenario: str, n: int, poison_every: int, fault: FaultConfig,
              kill_after_items: int | None = None, drop_batches: int = 0,
              timeout: float = 600) -> tuple[Audit, Figures]:
    """Submit a batch, inject the faults while it runs, audit it when it is final.

    ``kill_after_items``: once that many items have landed, the next render invocation dies
    half-way through its batch."""
    render = cloud.spec.function("render").name
    section = upload_template(cloud)
    items, poison = batch_items(n, poison_every)
    _, failed_before = render_poller_stats(cloud)
    engine_before = engine_stats()
    started = time.perf_counter()
    with cloud.faults.active(fault) as stats:
        if drop_batches:
            cloud.faults.drop_batches(render, times=drop_batches)
        job_id = submit(cloud, section, items)
        if kill_after_items is not None:
            wait_for(lambda: jobs.get_job(job_id).processed >= kill_after_items, timeout=timeout,
                     interval=0.2, what="the batch to get going")
            cloud.faults.kill_instance(render, times=1)
        wait_for(lambda: jobs.get_job(job_id).is_complete, timeout=timeout, interval=0.2,
                 what=f"every item of job {job_id} to land")
        processing = time.perf_counter() - started
        job = wait_final(job_id, timeout)
        wall = time.perf_counter() - started
        fault_figures = stats.as_dict()
    result = audit(job_id, n, poison)
    _, failed_after = render_poller_stats(cloud)
    engine_after = engine_stats()
    figures = Figures(
        scenario=scenario, items=n, poison=len(poison), succeeded=job.succeeded, failed=job.failed,
        lost=result.lost, double_counted=result.double_counted, redelivered=failed_after - failed_before,
        faults=fault_figures, engine={k: engine_after[k] - engine_before[k] for k in engine_after},
        finalize_executions=result.finalize_executions, wall_s=round(wall, 1),
        items_wall_s=round(processing, 1),
    )
    report(figures)
    return result, figures


def report(figures: Figures) -> None:
    """Print the figures as one JSON line and append them to a file for the README."""
    line = figures.as_json()
    print(line)
    path = Path(os.environ.get("POSTERFLOW_RELIABILITY_FIGURES",
                               Path(tempfile.gettempdir()) / "posterflow-reliability.jsonl"))
    with path.open("a") as f:
        f.write(line + "\n")
