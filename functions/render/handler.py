"""fn render: SQS batches of poster items, or a direct invoke for synchronous posters."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from posterflow.posters import worker as render_worker

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "Records" in event:
        return render_worker.handle_sqs(event)
    return render_worker.handle_direct(event)
