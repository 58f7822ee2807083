"""fn api: API Gateway REST proxy events → the posterflow REST API."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response

from posterflow import observability, tenancy
from posterflow.api import request
from posterflow.api.app import build, normalise_event, to_proxy

logger = Logger()
tracer = observability.tracer
metrics = observability.function_metrics()
app = build()


# The resolver parses the event with Powertools' APIGatewayProxyEvent itself. Responses stay
# out of traces (capture_response=False): they carry presigned links and job tokens.
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    tenancy.use(tenancy.from_event(event))
    normalised = normalise_event(event)
    if isinstance(normalised, Response):
        return to_proxy(normalised)
    request.use(normalised, context)
    return app.resolve(normalised, context)
