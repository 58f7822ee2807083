"""The API's calls to the render function (synchronous invoke) and presigned links."""

from __future__ import annotations

import json
from typing import Any

from posterflow import aws, config, tenancy
from posterflow.api.errors import ApiError
from posterflow.errors import Reason


def invoke_render(spec: dict[str, Any]) -> dict[str, Any]:
    resp = aws.client("lambda").invoke(FunctionName=config.function_name("render"),
                                       Payload=json.dumps({"spec": spec, "tenant": tenancy.current()}).encode())
    payload = json.loads(resp["Payload"].read() or b"null")
    if resp.get("FunctionError"):
        raise ApiError(Reason.RENDER_FUNCTION_FAILED, f"render function failed: {payload.get('errorType')}",
                       payload.get("errorMessage"))
    if not payload.get("ok"):
        err = payload["error"]
        raise ApiError(Reason(err["reason"]), err["message"], err.get("details"))
    return dict(payload["output"])


def read_output(key: str) -> bytes:
    return bytes(aws.client("s3").get_object(Bucket=config.bucket(), Key=key)["Body"].read())
