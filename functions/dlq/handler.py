"""fn dlq: dead-letter queues → items recorded as failed with the reason."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from posterflow import dlq

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dlq.handle(event)
