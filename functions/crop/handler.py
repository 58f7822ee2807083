"""fn crop: SQS batches of ZIP entries → face crops in S3, results on the job's items."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from posterflow.crop import worker as crop_worker

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return crop_worker.handle_sqs(event)
