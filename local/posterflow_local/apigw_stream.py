"""The REST gateway's streaming routes: the job streams, as API Gateway with
``responseTransferMode: STREAM`` and Lambda Web Adapter serve them in AWS.

The stream function is an HTTP server (``posterflow.progress.sse_server``); the local cloud
runs it in-process on a loopback port, as Lambda Web Adapter runs it next to the adapter, and
this proxy forwards each stream request to it with API Gateway's request context in the
``x-amzn-request-context`` header (what the adapter passes), relaying the answer chunk by chunk
as it arrives — never buffered. When the client goes away, the proxy closes its upstream
connection, and the function's server ends that stream within one poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import aiohttp
from aiohttp import web

log = logging.getLogger("posterflow.local.apigw")

# Headers forwarded to the function (API Gateway forwards all but hop-by-hop ones; these are
# the ones the stream reads or a client sends).
FORWARDED = ("Accept", "Last-Event-ID", "x-api-key", "User-Agent", "Cache-Control")
# How often a quiet stream checks whether its client is still there.
CLIENT_CHECK_S = 0.2


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def proxy_stream(request: web.Request, upstream: str, request_context: dict[str, Any]) -> web.StreamResponse:
    """Forward one stream request to the function's server at ``upstream`` and relay its answer."""
    headers = {k: request.headers[k] for k in FORWARDED if k in request.headers}
    headers["x-amzn-request-context"] = json.dumps(request_context, separators=(",", ":"))
    url = f"{upstream}{request.rel_url}"
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session, \
            session.get(url, headers=headers) as upstream_resp:
        if upstream_resp.status != 200 or not upstream_resp.headers.get("Content-Type", "").startswith(
                "text/event-stream"):
            body = await upstream_resp.read()
            resp = web.Response(status=upstream_resp.status, body=body)
            for name in ("Content-Type", "Cache-Control"):
                if name in upstream_resp.headers:
                    resp.headers[name] = upstream_resp.headers[name]
            return resp
        out = web.StreamResponse(status=200)
        for name in ("Content-Type", "Cache-Control", "X-Accel-Buffering"):
            if name in upstream_resp.headers:
                out.headers[name] = upstream_resp.headers[name]
        out.enable_chunked_encoding()
        await out.prepare(request)
        reader = upstream_resp.content
        while True:
            if _client_gone(request):
                log.info("stream client left: closing the function's stream")
                return out
            try:
                data = await asyncio.wait_for(reader.readany(), CLIENT_CHECK_S)
            except TimeoutError:
                continue
            if not data:
                break
            try:
                await out.write(data)
            except (ConnectionResetError, aiohttp.ClientConnectionResetError):
                return out
        with contextlib.suppress(ConnectionResetError, aiohttp.ClientConnectionResetError):
            await out.write_eof()  # the client may have left right after the last frame
        return out
