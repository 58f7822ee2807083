"""The request being handled, for code that needs more than its route's parameters (the
``Idempotency-Key`` header, a query value on a route without validation, the Lambda context).

Route modules are Powertools ``Router``s, included by the app; a ``Router``'s own
``current_event`` is the event of the *last* app that included it, which is wrong when several
apps share the route modules (the local cloud runs several API instances in one process). So
the API handler sets the request here, in a context variable: each invocation sees its own.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

_current: ContextVar[tuple[APIGatewayProxyEvent, Any] | None] = ContextVar("posterflow_request", default=None)


def use(event: dict[str, Any], lambda_context: Any) -> None:
    _current.set((APIGatewayProxyEvent(event), lambda_context))


def event() -> APIGatewayProxyEvent:
    found = _current.get()
    if found is None:
        raise LookupError("no API request is being handled")
    return found[0]


def lambda_context() -> Any:
    found = _current.get()
    return None if found is None else found[1]


def header(name: str) -> str | None:
    """A request header, case-insensitively."""
    return event().headers.get(name)  # Powertools' headers are case-insensitive


def query(name: str) -> str | None:
    return event().get_query_string_value(name)
