"""fn splitter: uploads (S3 events) and continuations on the split queue → per-item messages."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from posterflow import observability, split

logger = Logger()
tracer = observability.tracer
metrics = observability.function_metrics()


# Powertools' batch processor hands the runner each SQSRecord; a body that is an S3 notification
# is read as an S3EventRecord.
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return split.handle(event, context.get_remaining_time_in_millis)
