"""fn dlq: dead-letter queues → items recorded as failed with the reason; the stalled-job sweep."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from posterflow import observability
from posterflow.jobs import dlq
from posterflow.resources import stack_spec

logger = Logger()
tracer = observability.tracer
metrics = observability.function_metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("action") == "sweep":  # the scheduled rule, or an operator with a job list
        older = float(event.get("older_than_s", stack_spec().job_stall_timeout_s))
        return dlq.sweep(older, event.get("job_ids"))
    return dlq.handle(event)  # Powertools' batch processor hands each SQSRecord to the consumer
