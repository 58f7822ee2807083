"""fn crop: SQS batches of ZIP entries → face crops in S3, results on the job's items."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from posterflow import observability
from posterflow.crop import worker as crop_worker

logger = Logger()
tracer = observability.tracer
metrics = observability.function_metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return crop_worker.handle_sqs(event)  # parsed with Powertools' SQSEvent there
