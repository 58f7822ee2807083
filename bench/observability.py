"""What Powertools Tracer and the EMF metrics cost a handler invocation where tracing is off (the
local cloud): a no-op handler bare, wrapped as every function's handler is (Tracer's
``capture_lambda_handler`` + :meth:`FunctionMetrics.log_metrics`), and wrapped recording a render
batch's metrics (10 posters: rendered, render time, queue-to-done = 30 values, one EMF line).
Prints JSON; the last line is one object with the microseconds per invocation.

    .venv/bin/python bench/observability.py [--calls 5000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")  # as the local cloud sets it

from posterflow import observability


class _Context:
    function_name = "bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    memory_limit_in_mb = 128
    aws_request_id = "bench"


def _per_call_us(handler: Callable[[Any, Any], Any], calls: int) -> float:
    context = _Context()
    with contextlib.redirect_stdout(io.StringIO()):  # the EMF lines
        handler({}, context)  # the instance's cold start
        started = time.perf_counter()
        for _ in range(calls):
            handler({}, context)
        return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=5000)
    args = ap.parse_args()
    tracer = observability.tracer
    metrics = observability.FunctionMetrics(namespace="bench", service="bench-render")

    def bare(event: Any, context: Any) -> dict[str, bool]:
        return {"ok": True}

    def batch(event: Any, context: Any) -> dict[str, bool]:
        sent = int(time.time() * 1000) - 50
        for _ in range(10):
            observability.poster(succeeded=True, section=None, render_ms=120)
            observability.queue_to_done(sent)
        return {"ok": True}

    wrapped = tracer.capture_lambda_handler(capture_response=False)(metrics.log_metrics(bare))
    wrapped_batch = tracer.capture_lambda_handler(capture_response=False)(metrics.log_metrics(batch))
    result = {
        "tracer_disabled": bool(tracer.disabled),
        "calls": args.calls,
        "bare_us": round(_per_call_us(bare, args.calls), 2),
        "wrapped_no_metrics_us": round(_per_call_us(wrapped, args.calls), 2),
        "wrapped_render_batch_metrics_us": round(_per_call_us(wrapped_batch, args.calls), 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
