"""The resolver: routes from the route modules, validation errors in our error shape."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from posterflow import tenancy
from posterflow.api import body as request_body
from posterflow.api import (
    routes_batch,
    routes_bulk,
    routes_dashboard,
    routes_download,
    routes_generate,
    routes_jobs,
    routes_stats,
    routes_templates,
    routes_upload_zip,
    routes_uploads,
)
from posterflow.api.errors import ApiError, response_of, status_of
from posterflow.errors import PosterflowError, Reason

logger = Logger(child=True)

# The API's version (OpenAPI ``info.version``): the minor moves when routes or fields are added,
# the major when a client would break. posterflow-client's major.minor follow it. 1.1.0 added
# job streams, the ZIP form upload, priority lanes, canvas templates, batch modes, merged PDFs,
# logs and stats.
API_VERSION = "1.1.0"


def build() -> APIGatewayRestResolver:
    # The body gate (normalise_event) has parsed the JSON body already: the resolver reuses it.
    app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=request_body.json_body)
    app.enable_swagger(path="/api/docs", title="posterflow API", version=API_VERSION)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "service": "posterflow"}

    @app.get("/api/webhook-secret")
    def webhook_secret() -> dict[str, Any]:
        tenant = tenancy.current()
        return {"tenant": tenant, "secret": tenancy.webhook_secret(tenant).decode(),
                "header": "X-Posterflow-Signature",
                "scheme": "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>' with the secret>"}

    @app.get("/api/openapi.json")
    def openapi() -> Response[str]:
        return Response(status_code=200, content_type="application/json",
                        body=app.get_openapi_json_schema(title="posterflow API", version=API_VERSION))

    for routes in (routes_templates, routes_generate, routes_jobs, routes_download, routes_bulk, routes_uploads,
                   routes_batch, routes_stats):
        app.include_router(routes.router)
    app.include_router(routes_dashboard.router)  # the dashboard page and its files: public, with a CSP
    app.include_router(routes_upload_zip.router)  # multipart: its body passes the JSON gate (api/body.py)

    @app.exception_handler(RequestValidationError)
    def validation(exc: RequestValidationError) -> Response[str]:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return response_of(ApiError(Reason.MALFORMED_JSON, "request body is not valid JSON",
                                        [e.get("ctx") for e in errors]))
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
        return response_of(ApiError(Reason.VALIDATION_ERROR, "request failed validation", details))

    @app.exception_handler(RequestUnsupportedContentType)
    def unsupported_type(exc: RequestUnsupportedContentType) -> Response[str]:
        return response_of(ApiError(Reason.UNSUPPORTED_MEDIA_TYPE,
                                    "this route takes a JSON body: send it with Content-Type: application/json",
                                    {"content_type": app.current_event.headers.get("content-type")}))

    @app.exception_handler(PosterflowError)
    def posterflow_error(exc: PosterflowError) -> Response[str]:
        if status_of(exc.reason) >= 500:
            logger.warning("request failed", extra={"reason": exc.reason.value, "error": exc.message})
        return response_of(exc)

    @app.not_found
    def no_route(exc: Exception) -> Response[str]:
        return response_of(ApiError(Reason.NO_ROUTE,
                                    f"no route for {app.current_event.http_method} {app.current_event.path}"))

    return app


def normalise_event(event: dict[str, Any]) -> dict[str, Any] | Response[str]:
    """The body gate's 4xx (size, encoding, JSON limits), else the event for the resolver,
    its body decoded from base64 to text unless a route reads it as bytes (api/body.py).

    Bodies that are JSON count as JSON whatever the Content-Type says: the seeds' curl
    examples post JSON with curl's default form content type."""
    try:
        event = request_body.gate(event)
    except PosterflowError as exc:
        return response_of(exc)
    body = event.get("body")
    if body and not event.get("isBase64Encoded") and request_body.looks_like_json(body):
        headers = dict(event.get("headers") or {})
        for k in list(headers):
            if k.lower() == "content-type":
                del headers[k]
        headers["Content-Type"] = "application/json"
        event = {**event, "headers": headers,
                 "multiValueHeaders": {**(event.get("multiValueHeaders") or {}), "Content-Type": ["application/json"]}}
    return event


def to_proxy(resp: Response[str]) -> dict[str, Any]:
    return {"statusCode": resp.status_code, "headers": {"Content-Type": "application/json"},
            "body": resp.body if isinstance(resp.body, str) else json.dumps(resp.body)}
