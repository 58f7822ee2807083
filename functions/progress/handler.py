"""fn progress: WebSocket routes, DynamoDB stream batches and the heartbeat schedule."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent, DynamoDBStreamEvent

from posterflow import observability, progress
from posterflow.progress.coalesce import Gate

logger = Logger()
tracer = observability.tracer
metrics = observability.function_metrics()
# One gate per instance: its memory of recent frames spares DynamoDB a failing write.
gate = Gate()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "Records" in event:
        stream = DynamoDBStreamEvent(event)
        report = progress.handle_records(stream.raw_event["Records"], gate=gate)
        if report.gone:
            logger.info("removed gone connections", extra={"connections": report.gone})
        return {"jobs": report.jobs, "frames": report.frames}
    if "requestContext" in event:
        route = APIGatewayProxyEvent(event)  # a WebSocket route: $connect, $disconnect, $default
        logger.append_keys(route=route.request_context.route_key,
                           connection_id=route.request_context.connection_id)
        return progress.handle_route(route.raw_event)
    if event.get("source") == "aws.events" or event.get("action") == "heartbeat":
        return {"heartbeats": progress.heartbeat_all()}
    raise ValueError("fn progress expects WebSocket events, stream records or a scheduled heartbeat")
