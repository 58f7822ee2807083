"""API Gateway emulation: the REST API (proxy events v1) and the WebSocket API.

The REST server turns each HTTP request into the event API Gateway's Lambda proxy
integration sends and answers with the function's ``statusCode``/``headers``/``body``.
The WebSocket server turns connect / message / disconnect into WebSocket API events and
serves the ``@connections`` management API (POST, GET, DELETE; 410 for unknown ids) that
the progress function calls through boto3's ``apigatewaymanagementapi`` client.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from posterflow.api.routes_dashboard import security_headers
from posterflow.progress import sse
from posterflow.resources import stack_spec
from posterflow_local.apigw_stream import proxy_stream
from posterflow_local.lambda_runtime import InvokeResult, LambdaRuntime

log = logging.getLogger("posterflow.local.apigw")

# The stack's REST API's binary media types and request cap, from the one resource spec
# (infra/posterflow_infra/apis.py reads the same values).
BINARY_MEDIA_TYPES: tuple[str, ...] = stack_spec().api_binary_media_types
MAX_REQUEST_BYTES = stack_spec().api_max_request_bytes


async def read_body(request: web.Request) -> bytes:
    """The request body, or API Gateway's answer to one over its cap: 413 with the stack's
    ``REQUEST_TOO_LARGE`` gateway response (the API's error shape), the function never called."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(1024 * 1024):  # b"" at the end
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            await _discard(request)
            raise _too_large(size)
        chunks.append(chunk)
    return b"".join(chunks)


async def _discard(request: web.Request, budget_s: float = 5.0) -> None:
    """Read the rest of a refused body (for a while), so the answer is read by a client still
    sending and the connection stays usable, as with API Gateway."""
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline and await request.content.read(1024 * 1024):
        pass


def _too_large(size: int) -> web.HTTPRequestEntityTooLarge:
    return web.HTTPRequestEntityTooLarge(max_size=MAX_REQUEST_BYTES, actual_size=size,
                                         text=json.dumps(stack_spec().api_too_large_error),
                                         content_type="application/json")


def rest_event(request: web.Request, body: bytes, stage: str, *,
               binary_media_types: tuple[str, ...] = BINARY_MEDIA_TYPES) -> dict[str, Any]:
    """The REST API (v1) proxy event for one request."""
    headers = {k: v for k, v in request.headers.items()}
    multi_headers: dict[str, list[str]] = {}
    for k, v in request.headers.items():
        multi_headers.setdefault(k, []).append(v)
    query = {k: request.query.getall(k)[-1] for k in request.query}
    multi_query = {k: request.query.getall(k) for k in request.query}
    body_text, is_b64 = _proxy_body(body, request.headers.get("Content-Type"), binary_media_types)
    now = time.time()
    return {
        "resource": "/{proxy+}",
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": {"proxy": request.path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": request.method,
            "path": f"/{stage}{request.path}",
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "identity": {"sourceIp": request.remote or "127.0.0.1", "userAgent": request.headers.get("User-Agent"),
                         # API Gateway names the caller's API key by its id, never its value.
                         "apiKey": None, "apiKeyId": _api_key_id(request.headers.get("x-api-key"))},
            "accountId": "123456789012",
            "apiId": "local",
            "protocol": "HTTP/1.1",
            "domainName": request.host,
        },
        "body": body_text,
        "isBase64Encoded": is_b64,
    }


def _proxy_body(body: bytes, content_type: str | None, binary_media_types: tuple[str, ...]) -> tuple[str | None, bool]:
    """The event's ``body`` and ``isBase64Encoded``, as API Gateway's REST proxy makes them.

    API Gateway base64-encodes a body only when its Content-Type matches one of the API's
    binary media types (the stack's ``*/*`` matches every body); any other body goes as UTF-8
    text, whatever its bytes, with each byte that is not UTF-8 replaced by U+FFFD (the
    handler's body gate refuses those).
    """
    if not body:
        return None, False
    if _is_binary(content_type, binary_media_types):
        return base64.b64encode(body).decode(), True
    return body.decode("utf-8", "replace"), False


def _is_binary(header: str | None, binary_media_types: tuple[str, ...]) -> bool:
    """Whether a Content-Type (or an Accept header: only its first type counts, as with API
    Gateway) matches one of the binary media types: exactly, by ``type/*`` or by ``*/*``.
    A missing or empty header matches ``*/*`` only (what AWS does there is not documented)."""
    media = (header or "").split(",", 1)[0].split(";", 1)[0].strip().lower()
    types = {b.lower() for b in binary_media_types}
    if not media:
        return "*/*" in types
    kind = media.split("/", 1)[0]
    return bool(types & {"*/*", media, f"{kind}/*"})


def _api_key_id(key: str | None) -> str | None:
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:12] if key else None


def proxy_response(result: InvokeResult, accept: str | None, *,
                   binary_media_types: tuple[str, ...] = BINARY_MEDIA_TYPES) -> web.Response:
    """The function's answer as API Gateway's REST proxy sends it: an ``isBase64Encoded`` body
    is decoded to bytes only when the request's ``accept`` header matches a binary media type
    (:func:`_is_binary`); otherwise the client gets the base64 text, as on AWS."""
    if result.failed:
        log.error("api function failed: %s: %s", result.error_type, result.error_message)
        return web.json_response({"message": "Internal server error"}, status=502)
    payload = result.payload
    if not isinstance(payload, dict) or "statusCode" not in payload:
        return web.json_response({"message": "Internal server error"}, status=502)
    body = payload.get("body") or ""
    binary = payload.get("isBase64Encoded") and _is_binary(accept, binary_media_types)
    data = base64.b64decode(body) if binary else str(body).encode()
    resp = web.Response(status=int(payload["statusCode"]), body=data)
    for k, v in (payload.get("headers") or {}).items():
        resp.headers[k] = str(v)
    for k, values in (payload.get("multiValueHeaders") or {}).items():
        for v in values:
            resp.headers.add(k, str(v))
    return resp


class ApiGateway:
    """Both APIs on one asyncio loop in a background thread."""

    def __init__(self, runtime: LambdaRuntime, rest_function: str, ws_function: str, *, host: str = "127.0.0.1",
                 rest_port: int = 8000, ws_port: int = 8001, stage: str = "prod",
                 static_dir: Path | None = None) -> None:
        self.runtime = runtime
        self.rest_function = rest_function
        self.ws_function = ws_function
        self.host = host
        self.rest_port = rest_port
        self.ws_port = ws_port
        self.stage = stage
        self.static_dir = static_dir
        self.connections: dict[str, web.WebSocketResponse] = {}
        # The stream function's HTTP server (LocalCloud starts it): the job stream routes go there.
        self.stream_url: str | None = None
        self._connected_at: dict[str, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runners: list[web.AppRunner] = []
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="apigw", daemon=True)
        self._thread.start()
        self._ready.wait(15)
        if self._error:
            raise self._error

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start_sites())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    async def _start_sites(self) -> None:
        rest = web.Application(client_max_size=64 * 1024 * 1024)
        if self.static_dir is not None:
            rest.router.add_get("/", self._index)
            # The page's files come from the API function (GET /static/<file>), as in AWS.
        rest.router.add_route("*", "/{tail:.*}", self._rest)
        ws = web.Application()
        ws.router.add_route("*", r"/{prefix:.*}@connections/{id}", self._connections_api)
        ws.router.add_get("/{tail:.*}", self._websocket)
        for app, port, attr in ((rest, self.rest_port, "rest_port"), (ws, self.ws_port, "ws_port")):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, self.host, port)
            await site.start()
            self._runners.append(runner)
            if port == 0:
                setattr(self, attr, runner.addresses[0][1])

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            for ws in list(self.connections.values()):
                await ws.close()
            for runner in self._runners:
                await runner.cleanup()

        fut = asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        try:
            fut.result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread:
                self._thread.join(5)

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.ws_port}"

    @property
    def management_endpoint(self) -> str:
        return f"http://{self.host}:{self.ws_port}/{self.stage}"

    async def _invoke(self, name: str, event: dict[str, Any]) -> InvokeResult:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.runtime.invoke, name, event)

    # ---- REST ------------------------------------------------------------------------------
    async def _index(self, request: web.Request) -> web.StreamResponse:
        assert self.static_dir is not None
        # The deployed API's headers (GET /dashboard), so the page meets the same CSP here.
        return web.FileResponse(self.static_dir / "index.html", headers=security_headers())

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        body = await read_body(request)
        event = rest_event(request, body, self.stage)
        if self.stream_url and request.method == "GET" and sse.route_job_id(request.path) is not None:
            # Streamed routes (responseTransferMode STREAM): the stream function's own server.
            return await proxy_stream(request, self.stream_url, event["requestContext"])
        return proxy_response(await self._invoke(self.rest_function, event), request.headers.get("Accept"))

    # ---- WebSocket -------------------------------------------------------------------------
    def _ws_event(self, route: str, event_type: str, connection_id: str, request: web.Request,
                  body: str | None = None) -> dict[str, Any]:
        now = time.time()
        event: dict[str, Any] = {
            "requestContext": {
                "routeKey": route,
                "eventType": event_type,
                "connectionId": connection_id,
                "domainName": f"{self.host}:{self.ws_port}",
                "stage": self.stage,
                "apiId": "local-ws",
                "requestId": str(uuid.uuid4()),
                "connectedAt": int(self._connected_at.get(connection_id, now) * 1000),
                "requestTimeEpoch": int(now * 1000),
                "messageDirection": "IN",
                "identity": {"sourceIp": request.remote or "127.0.0.1"},
            },
            "isBase64Encoded": False,
        }
        if route == "$connect":
            event["headers"] = dict(request.headers)
            event["queryStringParameters"] = {k: request.query.getall(k)[-1] for k in request.query} or None
            event["multiValueQueryStringParameters"] = {k: request.query.getall(k) for k in request.query} or None
        if body is not None:
            event["body"] = body
        return event

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.json_response({"message": "WebSocket endpoint: connect with a WebSocket client"}, status=426)
        connection_id = base64.urlsafe_b64encode(uuid.uuid4().bytes[:9]).decode()
        self._connected_at[connection_id] = time.time()
        result = await self._invoke(self.ws_function, self._ws_event("$connect", "CONNECT", connection_id, request))
        status = _status_of(result)
        if status != 200:
            self._connected_at.pop(connection_id, None)
            return web.json_response({"message": "Forbidden"}, status=403 if status < 500 else 502)
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        self.connections[connection_id] = ws
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    route = _route_of(msg.data)
                    event = self._ws_event(route, "MESSAGE", connection_id, request, body=msg.data)
                    result = await self._invoke(self.ws_function, event)
                    # A route's response body goes back to the client, as with a route response.
                    if not result.failed and isinstance(result.payload, dict) and result.payload.get("body"):
                        await ws.send_str(str(result.payload["body"]))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.connections.pop(connection_id, None)
            self._connected_at.pop(connection_id, None)
            await self._invoke(self.ws_function, self._ws_event("$disconnect", "DISCONNECT", connection_id, request))
        return ws

    async def _connections_api(self, request: web.Request) -> web.StreamResponse:
        connection_id = request.match_info["id"]
        ws = self.connections.get(connection_id)
        if ws is None or ws.closed:
            return web.json_response({"message": "Gone"}, status=410,
                                     headers={"x-amzn-ErrorType": "GoneException"})
        if request.method == "POST":
            data = await request.read()
            await ws.send_str(data.decode("utf-8", "replace"))
            return web.Response(status=200)
        if request.method == "DELETE":
            await ws.close()
            return web.Response(status=204)
        if request.method == "GET":
            connected = self._connected_at.get(connection_id, time.time())
            return web.json_response({
                "connectedAt": _iso(connected), "lastActiveAt": _iso(time.time()),
                "identity": {"sourceIp": request.remote or "127.0.0.1", "userAgent": ""},
            })
        return web.json_response({"message": "Method not allowed"}, status=405)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _status_of(result: InvokeResult) -> int:
    if result.failed:
        return 500
    if isinstance(result.payload, dict):
        return int(result.payload.get("statusCode", 200))
    return 200


_ACTION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _route_of(body: str) -> str:
    """Route selection ``$request.body.action``; unknown or unparsable → ``$default``."""
    try:
        action = json.loads(body).get("action")
    except (ValueError, AttributeError):
        return "$default"
    return action if isinstance(action, str) and _ACTION.match(action) else "$default"


