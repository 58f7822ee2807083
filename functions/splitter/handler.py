"""fn splitter: uploads (S3 events) and continuations on the split queue → per-item messages."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from posterflow import split

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return split.handle(event, context.get_remaining_time_in_millis)
