"""fn progress: WebSocket routes, DynamoDB stream batches and the heartbeat schedule."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from posterflow import progress
from posterflow.progress.coalesce import Gate

logger = Logger()
# One gate per instance: its memory of recent frames spares DynamoDB a failing write.
gate = Gate()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "Records" in event:
        report = progress.handle_records(event["Records"], gate=gate)
        if report.gone:
            logger.info("removed gone connections", extra={"connections": report.gone})
        return {"jobs": report.jobs, "frames": report.frames}
    if "requestContext" in event:
        return progress.handle_route(event)
    if event.get("source") == "aws.events" or event.get("action") == "heartbeat":
        return {"heartbeats": progress.heartbeat_all()}
    raise ValueError("fn progress expects WebSocket events, stream records or a scheduled heartbeat")
