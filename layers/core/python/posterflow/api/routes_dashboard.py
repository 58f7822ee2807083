"""``GET /dashboard`` and its ``GET /static/<file>``: the jobs dashboard, served by the API.

The page (``dashboard/`` beside this module: package data of the library, so the deployed api
function and the local cloud serve the same files) is public: API Gateway asks no API key for
these two routes (``infra/posterflow_infra/apis.py``). It holds no data; the page asks for the
user's API key, keeps it in ``sessionStorage`` only and sends it as ``x-api-key`` on every data
call, which API Gateway checks as for any client.

Every answer carries a strict Content-Security-Policy: scripts and styles only from this API
(no inline script), connections only to this API and the WebSocket API, images from this API,
``blob:``/``data:`` (previews fetched with the key) and the bucket's presigned URLs, and no
framing.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from posterflow import aws, config
from posterflow.api.errors import ApiError
from posterflow.errors import Reason

router = Router()

DASHBOARD_DIR = Path(__file__).with_name("dashboard")
PAGE = "index.html"
# The page's own files: scripts and styles by name, nothing else of the package is reachable.
ASSET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\.(js|css)$")
ASSET_TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}
# The largest file served: the page's files are small; a bigger one is a packaging mistake.
MAX_ASSET_BYTES = 512 * 1024


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def _bucket_origin() -> str | None:
    """Where the API's presigned links point (poster thumbnails of a job): computed by botocore
    without a request, so it is the origin the links really use (local or AWS)."""
    bucket = config.bucket_or_none()
    if not bucket:
        return None
    url = aws.client("s3").generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "x"}, ExpiresIn=60)
    return _origin(str(url))


def content_security_policy() -> str:
    connect = ["'self'"]
    websocket = _origin(config.websocket_url())
    if websocket:
        connect.append(websocket)
    images = ["'self'", "blob:", "data:"]
    bucket = _bucket_origin()
    if bucket:
        images.append(bucket)
    return "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src {' '.join(images)}",
        f"connect-src {' '.join(connect)}",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])


def security_headers() -> dict[str, str]:
    """The headers every dashboard answer carries (the local cloud's ``/`` sends them too)."""
    return {
        "Content-Security-Policy": content_security_policy(),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }


@functools.lru_cache(maxsize=16)
def _read(name: str) -> str:
    path = DASHBOARD_DIR / name
    if not path.is_file() or path.stat().st_size > MAX_ASSET_BYTES:
        raise ApiError(Reason.NOT_FOUND, f"the dashboard has no file {name!r}")
    return path.read_text(encoding="utf-8")


@router.get("/dashboard", enable_validation=False, include_in_schema=False)  # a page, not API
def dashboard() -> Response[str]:
    return Response(status_code=200, content_type="text/html; charset=utf-8", body=_read(PAGE),
                    headers={**security_headers(), "Cache-Control": "no-cache"})


@router.get("/static/<name>", enable_validation=False, include_in_schema=False)
def asset(name: str) -> Response[str]:
    match = ASSET_NAME.match(name)
    if match is None:
        raise ApiError(Reason.NOT_FOUND, f"the dashboard has no file {name!r}")
    return Response(status_code=200, content_type=ASSET_TYPES[match.group(1)], body=_read(name),
                    headers={**security_headers(), "Cache-Control": "max-age=300"})
