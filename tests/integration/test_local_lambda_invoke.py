"""The Lambda Invoke API of the local cloud, through boto3."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from posterflow import aws


class QuotaExceeded(Exception):
    pass


def test_invoke_returns_result_and_errors(cloud: Any) -> None:
    def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event.get("fail"):
            raise QuotaExceeded("too many posters")
        return {"echo": event, "remaining_ms": context.get_remaining_time_in_millis(),
                "fn": context.function_name}

    cloud.register_function("t-echo", echo, timeout_s=7)
    lam = aws.client("lambda")
    resp = lam.invoke(FunctionName="t-echo", Payload=json.dumps({"a": 1}).encode())
    body = json.loads(resp["Payload"].read())
    assert "FunctionError" not in resp
    assert body["echo"] == {"a": 1} and body["fn"] == "t-echo"
    assert 0 < body["remaining_ms"] <= 7000

    arn = "arn:aws:lambda:us-east-1:123456789012:function:t-echo"
    resp = lam.invoke(FunctionName=arn, Qualifier="$LATEST", Payload=json.dumps({"fail": True}).encode())
    assert resp["FunctionError"] == "Unhandled"
    err = json.loads(resp["Payload"].read())
    assert err["errorType"] == "QuotaExceeded" and err["errorMessage"] == "too many posters"


def test_unknown_function_is_resource_not_found(cloud: Any) -> None:
    with pytest.raises(ClientError) as exc:
        aws.client("lambda").invoke(FunctionName="no-such-function", Payload=b"{}")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
