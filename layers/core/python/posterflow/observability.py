"""Metrics (CloudWatch Embedded Metric Format) and traces (X-Ray) of every function.

- :data:`tracer`: the one Powertools ``Tracer`` of the process. Every handler is wrapped in
  ``tracer.capture_lambda_handler``; a few hot library calls in ``tracer.capture_method``.
  Tracing is on in AWS (the stack sets ``tracing: ACTIVE``) and off on the local cloud, which
  sets ``POWERTOOLS_TRACE_DISABLED`` (Powertools also turns it off outside Lambda): a disabled
  tracer only passes calls through.
- :class:`FunctionMetrics`: one function instance's metrics. A handler module makes one at
  import (namespace and service from that function's ``POWERTOOLS_*`` settings) and wraps its
  handler in :meth:`FunctionMetrics.log_metrics`, which flushes them as EMF lines to the
  function's standard output at the end of every invocation, as Powertools' ``Metrics`` does;
  CloudWatch Logs turns those lines into metrics. Library code records through :func:`add`,
  which reaches the metrics of the invocation running in its context.

  Why not Powertools' ``Metrics`` directly: its metric set is shared by every instance in the
  process (class attributes), and the local cloud runs every function's instances as threads
  of one process, so one function's flush would carry another's metrics. Each
  ``FunctionMetrics`` holds Powertools' non-shared provider (``EphemeralMetrics``) instead, and
  the invocation's context variable says which one library code reaches (the local runtime
  runs each invocation in its own copy of the context).
- :class:`Metric`: every metric name, with its unit, in one place (the CloudWatch dashboard in
  ``infra/posterflow_infra/monitoring.py`` reads them from here).

Metrics count work done, per invocation: a redelivered message rendered again counts again
(the job's counters are the exact numbers). Metrics recorded outside an invocation (unit tests
of a worker, benchmarks) are dropped.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum
from typing import Any, TypeVar

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from posterflow import config

tracer = Tracer()

# Used when the function has no namespace setting (a handler imported outside the stack).
DEFAULT_NAMESPACE = "posterflow"
DEFAULT_SERVICE = "posterflow"

SERVICE_DIMENSION = "service"
SECTION_DIMENSION = "section"
# The template section is a dimension only for the sections an operator names in
# POSTERFLOW_METRIC_SECTIONS, at most this many: sections are tenant-chosen names (any number
# of them), and every distinct dimension value is a custom metric CloudWatch bills for. So the
# per-section metric count is bounded by this list, never by what tenants upload; a poster of any
# other section counts only under the service dimension (as every poster also does).
MAX_METRIC_SECTIONS = 20


class Metric(StrEnum):
    """Every metric posterflow emits (namespace: the stack's prefix; dimension: the function's
    service name, plus ``section`` where noted)."""

    POSTERS_RENDERED = "PostersRendered"
    """Posters rendered and stored (render; per section)."""
    POSTERS_FAILED = "PostersFailed"
    """Posters that failed for good: their items are recorded failed (render; per section)."""
    RENDER_MS = "RenderTime"
    """Milliseconds to make one poster: template, fill, render, overlays, store (render; per section)."""
    CROPS_SUCCEEDED = "CropsSucceeded"
    """Photos cropped and stored (crop)."""
    CROPS_FAILED = "CropsFailed"
    """Photos that failed for good (crop)."""
    CROP_MS = "CropTime"
    """Milliseconds to decode, detect and crop one photo (crop)."""
    FACES_FOUND = "FacesFound"
    """Faces the detector found in one photo (crop)."""
    QUEUE_TO_DONE_MS = "QueueToDoneLatency"
    """Milliseconds from an item's message being sent (its SQS ``SentTimestamp``) to its outcome
    being recorded (render, crop; redeliveries included)."""
    ITEMS_DEAD_LETTERED = "ItemsDeadLettered"
    """Items failed by the DLQ consumer after every delivery failed (dlq)."""
    COLD_STARTS = "ColdStarts"
    """First invocation of an instance (every function)."""


UNITS: dict[Metric, MetricUnit] = {
    Metric.POSTERS_RENDERED: MetricUnit.Count,
    Metric.POSTERS_FAILED: MetricUnit.Count,
    Metric.RENDER_MS: MetricUnit.Milliseconds,
    Metric.CROPS_SUCCEEDED: MetricUnit.Count,
    Metric.CROPS_FAILED: MetricUnit.Count,
    Metric.CROP_MS: MetricUnit.Milliseconds,
    Metric.FACES_FOUND: MetricUnit.Count,
    Metric.QUEUE_TO_DONE_MS: MetricUnit.Milliseconds,
    Metric.ITEMS_DEAD_LETTERED: MetricUnit.Count,
    Metric.COLD_STARTS: MetricUnit.Count,
}


def metric_sections() -> frozenset[str]:
    """The sections that get their own dimension (the first :data:`MAX_METRIC_SECTIONS` named)."""
    return frozenset(config.metric_sections()[:MAX_METRIC_SECTIONS])


H = TypeVar("H", bound=Callable[..., Any])


class FunctionMetrics:
    """One function instance's metrics, flushed at the end of each invocation.

    The metrics of one invocation are one EMF line per dimension set: every metric under
    ``service``; the metrics of a listed section also under ``service`` + ``section`` (one line
    per such section)."""

    def __init__(self, namespace: str | None = None, service: str | None = None) -> None:
        self.namespace = namespace or config.POWERTOOLS_METRICS_NAMESPACE.value() or DEFAULT_NAMESPACE
        self.service = service or config.POWERTOOLS_SERVICE_NAME.value() or DEFAULT_SERVICE
        self._sets: dict[str | None, EphemeralMetrics] = {}
        self._cold = True

    def _provider(self, section: str | None) -> EphemeralMetrics:
        found = self._sets.get(section)
        if found is None:
            found = EphemeralMetrics(namespace=self.namespace, service=self.service)
            if section is not None:
                found.add_dimensions(**{SERVICE_DIMENSION: self.service, SECTION_DIMENSION: section})
            self._sets[section] = found
        return found

    def add(self, metric: Metric, value: float, *, section: str | None = None) -> None:
        """Record one value; ``section`` becomes a dimension only if it is listed
        (:func:`metric_sections`)."""
        key = section if section is not None and section in metric_sections() else None
        self._provider(key).add_metric(name=metric.value, unit=UNITS[metric], value=value)

    def serialize(self) -> list[dict[str, Any]]:
        """The EMF documents a flush would print now, one per dimension set with metrics."""
        return [dict(p.serialize_metric_set()) for p in self._sets.values() if p.metric_set]

    def flush(self) -> list[dict[str, Any]]:
        """Print the recorded metrics as EMF lines (unless ``POWERTOOLS_METRICS_DISABLED``) and
        clear them; the documents printed."""
        documents = [] if is_metrics_disabled() else self.serialize()
        for document in documents:
            print(json.dumps(document, separators=(",", ":")), flush=True)
        self._sets.clear()
        return documents

    def log_metrics(self, handler: H) -> H:
        """Wrap a Lambda handler: its invocation's :func:`add` calls land here, and are flushed
        when it returns or raises (a cold start is counted on the instance's first call)."""

        @functools.wraps(handler)
        def wrapped(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            token = _current.set(self)
            try:
                if self._cold:
                    self._cold = False
                    self.add(Metric.COLD_STARTS, 1)
                return handler(event, context, *args, **kwargs)
            finally:
                _current.reset(token)
                self.flush()

        return wrapped  # type: ignore[return-value]

    @contextmanager
    def active(self) -> Iterator[FunctionMetrics]:
        """Make these the current metrics for a block (what :meth:`log_metrics` does around a
        handler), without flushing."""
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)


_current: ContextVar[FunctionMetrics | None] = ContextVar("posterflow_metrics", default=None)


def function_metrics() -> FunctionMetrics:
    """The metrics of a function instance: call at handler import, where the function's own
    ``POWERTOOLS_*`` settings are in place."""
    return FunctionMetrics()


def current() -> FunctionMetrics | None:
    return _current.get()


def add(metric: Metric, value: float, *, section: str | None = None) -> None:
    """Record a value on the running invocation's metrics (dropped outside an invocation)."""
    metrics = _current.get()
    if metrics is not None:
        metrics.add(metric, value, section=section)


def queue_to_done(sent_at_ms: int | None, now_s: float | None = None) -> None:
    """Record :attr:`Metric.QUEUE_TO_DONE_MS` for an item whose message was sent at
    ``sent_at_ms`` (epoch milliseconds; ``None``: unknown, nothing recorded)."""
    if sent_at_ms is None:
        return
    now_ms = (time.time() if now_s is None else now_s) * 1000
    add(Metric.QUEUE_TO_DONE_MS, max(0.0, now_ms - sent_at_ms))


def poster(*, succeeded: bool, section: str | None, render_ms: float | None = None) -> None:
    """One poster's outcome (a retryable failure is no outcome: it comes back)."""
    if succeeded:
        add(Metric.POSTERS_RENDERED, 1, section=section)
        if render_ms is not None:
            add(Metric.RENDER_MS, render_ms, section=section)
    else:
        add(Metric.POSTERS_FAILED, 1, section=section)


def crop(*, succeeded: bool, crop_ms: float | None = None, faces_found: int | None = None) -> None:
    """One photo's outcome."""
    add(Metric.CROPS_SUCCEEDED if succeeded else Metric.CROPS_FAILED, 1)
    if crop_ms is not None:
        add(Metric.CROP_MS, crop_ms)
    if faces_found is not None:
        add(Metric.FACES_FOUND, faces_found)
