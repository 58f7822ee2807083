"""A small poster job on the local cloud leaves the render function's EMF lines in its log output.

A Lambda function's log output is what it writes to standard output (CloudWatch Logs reads EMF
lines from there); the local cloud runs each handler in-process, so its functions write to this
process's standard output, one JSON line per EMF document, each naming its function in the
``service`` dimension (``POWERTOOLS_SERVICE_NAME``, applied while each handler module is
imported). The job's template section is listed in ``POSTERFLOW_METRIC_SECTIONS``, so its
posters' metrics also come under the ``section`` dimension, which sets this job's lines apart
from any other work of the session.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from posterflow import resources as r
from posterflow.observability import Metric
from tests.integration.helpers import api, wait_for

HTML = "<div style='font:16px sans-serif'>{{ name }}</div>"


def emf_documents(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def test_a_poster_job_prints_emf_lines_of_the_render_function(
        cloud: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    section = f"emf-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("POSTERFLOW_METRIC_SECTIONS", section)
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": "EMF", "format": "png", "width": 120, "height": 60, "html_content": HTML})
    assert status == 201, body
    capsys.readouterr()
    started = time.time()
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {
        "template_id": f"{section}_latest", "items": [{"name": "Ada"}, {"name": "Grace"}, {"other": "no name"}]})
    assert status == 202, body
    job_id = body["job_id"]

    def finished() -> Any:
        _, job, _ = api(cloud, "GET", f"/api/templates/job/{job_id}")
        return job if job["status"] in ("completed", "completed_with_errors", "failed") else None

    job = wait_for(finished, timeout=120, interval=0.3, what=f"job {job_id}")
    elapsed_ms = (time.time() - started) * 1000
    out = capsys.readouterr().out

    render = r.stack_spec().function("render").name
    docs = [d for d in emf_documents(out) if d.get("service") == render]
    mine = [d for d in docs if d.get("section") == section]
    assert mine, f"no EMF line of {render} with section {section}"
    for doc in mine:
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == r.stack_spec().prefix
        assert directive["Dimensions"] == [["service"], ["service", "section"]]

    def values(metric: Metric, documents: list[dict[str, Any]]) -> list[float]:
        return [v for d in documents for v in d.get(metric.value, [])]

    results = job["results"]
    succeeded = [x for x in results if x["status"] == "completed"]
    assert len(succeeded) == 2 and len(results) == 3
    assert sum(values(Metric.POSTERS_RENDERED, mine)) == 2
    assert sum(values(Metric.POSTERS_FAILED, mine)) == 1
    # Render time is each poster's generation time, as its item records it.
    assert sorted(round(v) for v in values(Metric.RENDER_MS, mine)) == sorted(
        x["generation_time_ms"] for x in succeeded)
    # Queue-to-done: one value per recorded item of the render function's lines, within the job's time.
    latencies = values(Metric.QUEUE_TO_DONE_MS, docs)
    assert len(latencies) >= 3
    assert all(0 <= v <= elapsed_ms + 1000 for v in latencies[-3:]), latencies


def test_tracing_is_off_on_the_local_cloud(cloud: Any) -> None:
    """No X-Ray daemon here: every function gets POWERTOOLS_TRACE_DISABLED, and the process's
    Tracer only passes calls through."""
    from posterflow import observability

    # The spec's Lambda handlers (the stream function is an HTTP server, outside the runtime).
    names = [fn.name for fn in r.stack_spec().functions if fn.name in cloud.runtime.names()]
    assert r.stack_spec().function("render").name in names
    for name in names:
        assert cloud.runtime.get(name).environment.get("POWERTOOLS_TRACE_DISABLED") == "true", name
    assert observability.tracer.disabled


def test_invoke_prints_the_answer_on_stdout_and_the_emf_line_on_stderr() -> None:
    """``posterflow invoke`` is ``sam local invoke``: the function's output (its EMF lines) on
    stderr, only the answer on stdout."""
    import subprocess
    import sys

    from tests.events import EVENTS_DIR

    event = str(EVENTS_DIR / "api" / "health.json")
    proc = subprocess.run([sys.executable, "-m", "posterflow_local.cli", "invoke", "api", event],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["statusCode"] == 200
    emf = [d for d in emf_documents(proc.stderr) if d.get("service") == r.stack_spec().function("api").name]
    assert [d[Metric.COLD_STARTS.value] for d in emf] == [[1.0]]


def test_the_dlq_function_counts_the_items_it_dead_letters(cloud: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from posterflow import jobs
    from tests.events import load_event

    job = jobs.create_job("poster", total=1)
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=0, input={"name": "Ada"})])
    event = load_event("dlq/render-dlq-unknown-job")
    event["Records"][0]["body"] = json.dumps({"job_id": job.job_id, "item_id": 0, "spec": {"template_id": "x"}})
    capsys.readouterr()
    result = cloud.runtime.invoke(r.stack_spec().function("dlq").name, event)
    assert not result.failed and result.payload == {"batchItemFailures": []}, result.error_payload()
    assert jobs.get_job(job.job_id).failed == 1
    dlq = r.stack_spec().function("dlq").name
    docs = [d for d in emf_documents(capsys.readouterr().out) if d.get("service") == dlq]
    assert sum(v for d in docs for v in d.get(Metric.ITEMS_DEAD_LETTERED.value, [])) == 1
    # The same message again (a redelivery) counts nothing: the item is already failed.
    cloud.runtime.invoke(dlq, event)
    again = [d for d in emf_documents(capsys.readouterr().out) if d.get("service") == dlq]
    assert sum(v for d in again for v in d.get(Metric.ITEMS_DEAD_LETTERED.value, [])) == 0
