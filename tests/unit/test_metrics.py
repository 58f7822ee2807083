"""Powertools metrics (EMF): every metric posterflow emits reaches the EMF line printed when an
invocation's metrics are flushed, with its unit, the function's namespace and service, and the
``section`` dimension only for listed sections."""

from __future__ import annotations

import json
from typing import Any

import pytest

from posterflow import jobs, observability
from posterflow.crop import worker as crop_worker
from posterflow.errors import Reason
from posterflow.jobs import sqs_batch
from posterflow.observability import Metric
from posterflow.posters import worker as render_worker
from posterflow.posters.pipeline import PosterError, PosterOutput, PosterSpec
from tests.events import load_event

NAMESPACE = "pf-test"
SERVICE = "pf-test-render"


def emf_lines(out: str) -> list[dict[str, Any]]:
    """The EMF documents among printed lines."""
    docs = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{") and '"_aws"' in line:
            docs.append(json.loads(line))
    return docs


def metric_names(doc: dict[str, Any]) -> set[str]:
    return {m["Name"] for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}


def dimension_sets(doc: dict[str, Any]) -> list[list[str]]:
    return [list(s) for d in doc["_aws"]["CloudWatchMetrics"] for s in d["Dimensions"]]


@pytest.fixture()
def metrics() -> observability.FunctionMetrics:
    return observability.FunctionMetrics(namespace=NAMESPACE, service=SERVICE)


def flushed(metrics: observability.FunctionMetrics, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    metrics.flush()
    return emf_lines(capsys.readouterr().out)


def poster_output(ms: int = 123) -> PosterOutput:
    return PosterOutput(key="outputs/default/j/000000.png", content_type="image/png", bytes=10,
                        generation_time_ms=ms, template_id="speaker_v1", template_version_used=1,
                        template_name="Speaker", width=10, height=10)


# ---- one test per metric: recorded through the library's call, present in the flushed line ----

def test_posters_rendered_and_render_time(metrics: observability.FunctionMetrics,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with metrics.active():
        render_worker.observe(PosterSpec(template_id="speaker_latest"), poster_output(123))
    (doc,) = flushed(metrics, capsys)
    assert doc[Metric.POSTERS_RENDERED] == [1.0]
    assert doc[Metric.RENDER_MS] == [123.0]
    units = {m["Name"]: m["Unit"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {"PostersRendered": "Count", "RenderTime": "Milliseconds"}
    assert doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == NAMESPACE
    assert doc["service"] == SERVICE
    assert dimension_sets(doc) == [["service"]]


def test_posters_failed(metrics: observability.FunctionMetrics, capsys: pytest.CaptureFixture[str]) -> None:
    with metrics.active():
        render_worker.observe(PosterSpec(template_id="speaker"),
                              PosterError(Reason.TEMPLATE_NOT_FOUND, "no such template"))
    (doc,) = flushed(metrics, capsys)
    assert doc[Metric.POSTERS_FAILED] == [1.0]
    assert metric_names(doc) == {"PostersFailed"}


def test_a_retryable_failure_is_no_outcome(metrics: observability.FunctionMetrics,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with metrics.active():
        render_worker.observe(PosterSpec(template_id="speaker"),
                              PosterError(Reason.BROWSER_CRASHED, "crashed", retryable=True))
    assert flushed(metrics, capsys) == []


def test_crop_time_faces_found_and_crops(metrics: observability.FunctionMetrics,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    with metrics.active():
        crop_worker.observe(jobs.ItemOutcome(item_id=0, status=jobs.ItemStatus.SUCCEEDED,
                                             timings={"total_ms": 41.5}, extra={"faces_found": 2}))
        crop_worker.observe(jobs.ItemOutcome(item_id=1, status=jobs.ItemStatus.FAILED, error="not an image",
                                             error_code=Reason.INVALID_IMAGE))
    (doc,) = flushed(metrics, capsys)
    assert doc[Metric.CROP_MS] == [41.5]
    assert doc[Metric.FACES_FOUND] == [2.0]
    assert doc[Metric.CROPS_SUCCEEDED] == [1.0]
    assert doc[Metric.CROPS_FAILED] == [1.0]


def test_queue_to_done_latency_from_the_sent_timestamp(metrics: observability.FunctionMetrics,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    with metrics.active():
        observability.queue_to_done(1_767_225_600_000, now_s=1_767_225_602.5)
        observability.queue_to_done(None)  # unknown: nothing recorded
    (doc,) = flushed(metrics, capsys)
    assert doc[Metric.QUEUE_TO_DONE_MS] == [2500.0]
    units = {m["Name"]: m["Unit"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {"QueueToDoneLatency": "Milliseconds"}


def test_the_sent_timestamp_reaches_the_worker() -> None:
    event = load_event("crop/sqs-batch", job_id="j1", bucket="b", queue_arn="arn:aws:sqs:us-east-1:1:q")
    seen: list[int | None] = []

    def worker(batch: list[sqs_batch.Received[crop_worker.CropMessage]]) -> list[str]:
        seen.extend(r.sent_at_ms for r in batch)
        return []

    sqs_batch.whole_batch(event, crop_worker.CropMessage, worker, what="crop")
    assert seen and all(s == 1_767_225_600_000 for s in seen)


def test_cold_starts_once_per_instance(metrics: observability.FunctionMetrics,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    handler = metrics.log_metrics(lambda event, context: "ok")
    capsys.readouterr()
    assert handler({}, None) == "ok"
    assert handler({}, None) == "ok"
    docs = emf_lines(capsys.readouterr().out)
    assert [d[Metric.COLD_STARTS] for d in docs] == [[1.0]]  # the second call had nothing to flush


# ---- the invocation's context --------------------------------------------------------------------

def test_log_metrics_flushes_when_the_handler_raises(metrics: observability.FunctionMetrics,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    def failing(event: Any, context: Any) -> None:
        observability.poster(succeeded=False, section=None)
        raise RuntimeError("boom")

    handler = metrics.log_metrics(failing)
    capsys.readouterr()
    with pytest.raises(RuntimeError):
        handler({}, None)
    (doc,) = emf_lines(capsys.readouterr().out)
    assert doc[Metric.POSTERS_FAILED] == [1.0]
    assert observability.current() is None


def test_outside_an_invocation_metrics_are_dropped(metrics: observability.FunctionMetrics,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    observability.poster(succeeded=True, section=None, render_ms=5)
    assert flushed(metrics, capsys) == []


def test_two_functions_in_one_process_keep_their_own_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    render = observability.FunctionMetrics(namespace=NAMESPACE, service="render")
    crop = observability.FunctionMetrics(namespace=NAMESPACE, service="crop")
    with render.active():
        observability.poster(succeeded=True, section=None, render_ms=5)
    with crop.active():
        observability.crop(succeeded=True, crop_ms=3, faces_found=1)
    capsys.readouterr()
    render.flush()
    (doc,) = emf_lines(capsys.readouterr().out)
    assert doc["service"] == "render" and Metric.CROP_MS not in doc and doc[Metric.RENDER_MS] == [5.0]


def test_metrics_disabled_prints_nothing(metrics: observability.FunctionMetrics, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    with metrics.active():
        observability.poster(succeeded=True, section=None, render_ms=5)
    assert flushed(metrics, capsys) == []
    assert metrics.serialize() == []  # cleared all the same


# ---- the section dimension is bounded ---------------------------------------------------------------

def test_section_dimension_only_for_listed_sections(metrics: observability.FunctionMetrics,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTERFLOW_METRIC_SECTIONS", "speaker, badge")
    with metrics.active():
        render_worker.observe(PosterSpec(template_id="speaker_v3"), poster_output(100))
        render_worker.observe(PosterSpec(template_id="speaker_latest"), poster_output(300))
        render_worker.observe(PosterSpec(template_id="tenant-made-42"), poster_output(50))
    docs = flushed(metrics, capsys)
    by_section = {d.get("section"): d for d in docs}
    assert set(by_section) == {"speaker", None}
    assert dimension_sets(by_section["speaker"]) == [["service"], ["service", "section"]]
    assert by_section["speaker"][Metric.RENDER_MS] == [100.0, 300.0]
    assert dimension_sets(by_section[None]) == [["service"]]
    assert by_section[None][Metric.RENDER_MS] == [50.0]


def test_at_most_twenty_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTERFLOW_METRIC_SECTIONS", ",".join(f"s{i}" for i in range(50)))
    sections = observability.metric_sections()
    assert len(sections) == observability.MAX_METRIC_SECTIONS == 20
    assert "s19" in sections and "s20" not in sections


def test_every_metric_has_a_unit() -> None:
    assert set(observability.UNITS) == set(Metric)


# ---- every Lambda handler is wrapped ------------------------------------------------------------

def test_every_handler_is_traced_and_flushes_its_metrics() -> None:
    """Each spec function whose handler is a Python Lambda handler wraps it in the Tracer and its
    instance's metrics (a response-streaming function is an HTTP server behind Lambda Web
    Adapter: no Lambda handler to wrap; its function still traces, see tests/infra)."""
    import ast

    from posterflow import resources as r

    checked = []
    for fn in r.stack_spec().functions:
        if getattr(fn, "invoke_mode", "buffered") == "response_stream":
            continue
        module_file, attribute = fn.handler.rsplit(".", 1)
        tree = ast.parse((fn.directory / f"{module_file}.py").read_text())
        (handler,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == attribute]
        decorators = [ast.unparse(d) for d in handler.decorator_list]
        assert any(d.startswith("tracer.capture_lambda_handler") for d in decorators), (fn.key, decorators)
        assert "metrics.log_metrics" in decorators, (fn.key, decorators)
        assert any(d.startswith("logger.inject_lambda_context") for d in decorators), (fn.key, decorators)
        checked.append(fn.key)
    assert {"api", "render", "crop", "splitter", "progress", "finalize", "dlq"} <= set(checked)


@pytest.mark.parametrize("metric", list(Metric), ids=lambda m: m.value)
def test_each_metric_reaches_the_flushed_emf_line_with_its_unit(metric: Metric, metrics: observability.FunctionMetrics,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with metrics.active():
        observability.add(metric, 7)
    (doc,) = flushed(metrics, capsys)
    assert doc[metric.value] == [7.0]
    (definition,) = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    assert definition == {"Name": metric.value, "Unit": observability.UNITS[metric].value}
