"""fn render: SQS batches of poster items, or a direct invoke for synchronous posters."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from posterflow import observability
from posterflow.posters import worker as render_worker

logger = Logger()
tracer = observability.tracer
metrics = observability.function_metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "Records" in event:
        return render_worker.handle_sqs(event)  # parsed with Powertools' SQSEvent there
    return render_worker.handle_direct(event)  # POST /api/generate's invoke: no event class
