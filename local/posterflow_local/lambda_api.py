"""WSGI middleware that answers the Lambda Invoke API in front of moto.

boto3's ``lambda.invoke`` and moto's Step Functions interpreter both call
``POST /2015-03-31/functions/{name}/invocations``; this middleware runs the registered
handler in-process and answers as Lambda does, including ``X-Amz-Function-Error: Unhandled``
with ``errorType`` = the exception class, which drives Retry/Catch by error name.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from typing import Any

from posterflow_local.embedded_aws import WSGIApp
from posterflow_local.lambda_runtime import LambdaRuntime, UnknownFunctionError

_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")


def lambda_invoke_middleware(runtime: LambdaRuntime) -> Any:
    def wrap(app: WSGIApp) -> WSGIApp:
        def middleware(environ: dict[str, Any], start_response: Any) -> Any:
            match = _INVOKE.match(environ.get("PATH_INFO", ""))
            if not match or environ.get("REQUEST_METHOD") != "POST":
                return app(environ, start_response)
            name = urllib.parse.unquote(match.group("name"))
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            if "Qualifier" in query:
                name = name.split(":")[0] if not name.startswith("arn:") else name
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            invocation_type = environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
            try:
                event = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                return _respond(start_response, "400 Bad Request", {
                    "Type": "User", "message": "Could not parse request body into json",
                }, {"x-amzn-ErrorType": "InvalidRequestContentException"})
            try:
                fn = runtime.get(name)
            except UnknownFunctionError as exc:
                return _respond(start_response, "404 Not Found", {"Type": "User", "message": str(exc)},
                                {"x-amzn-ErrorType": "ResourceNotFoundException"})
            if invocation_type == "Event":
                threading.Thread(target=fn.invoke, args=(event,), daemon=True,
                                 name=f"event-{fn.name}").start()
                return _respond(start_response, "202 Accepted", None, {})
            if invocation_type == "DryRun":
                return _respond(start_response, "204 No Content", None, {})
            result = fn.invoke(event)
            headers = {"X-Amz-Executed-Version": "$LATEST"}
            if result.failed:
                headers["X-Amz-Function-Error"] = "Unhandled"
                return _respond(start_response, "200 OK", result.error_payload(), headers)
            return _respond(start_response, "200 OK", result.payload, headers)

        return middleware

    return wrap


def _respond(start_response: Any, status: str, body: Any, headers: dict[str, str]) -> list[bytes]:
    data = b"" if body is None and not status.startswith("200") else json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                            *headers.items()])
    return [data]
