"""fn api: API Gateway REST proxy events → the posterflow REST API."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response

from posterflow import tenancy
from posterflow.api import request
from posterflow.api.app import build, normalise_event, to_proxy

logger = Logger()
app = build()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    tenancy.use(tenancy.from_event(event))
    normalised = normalise_event(event)
    if isinstance(normalised, Response):
        return to_proxy(normalised)
    request.use(normalised, context)
    return app.resolve(normalised, context)
