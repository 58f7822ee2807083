"""This process's boto3 clients reach the embedded AWS without a socket, and see exactly what
an HTTP client sees: same bodies, headers, errors and metadata; presigned URLs and other
processes still use HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from posterflow import aws
from posterflow import resources as r


def _http_client(service: str) -> Any:
    """A client that talks over the socket, as a separate process (or Django) would."""
    from posterflow_local.patches import inprocess_transport as inprocess

    client = boto3.session.Session(region_name=aws.region()).client(service)  # type: ignore[call-overload]
    client.meta.events.unregister("before-send", inprocess._send)
    return client


def test_library_clients_skip_the_socket(cloud: object, aws_stack: r.ResourceRefs) -> None:
    from posterflow_local.patches import inprocess_transport as inprocess

    s3 = aws.client("s3")
    sent: list[str] = []
    original = inprocess._send

    def spy(request: Any, **kwargs: Any) -> Any:
        response = original(request, **kwargs)
        sent.append("inprocess" if response is not None else "http")
        return response

    s3.meta.events.unregister("before-send", original)
    s3.meta.events.register("before-send", spy)
    try:
        s3.list_objects_v2(Bucket=aws_stack.bucket, MaxKeys=1)
    finally:
        s3.meta.events.unregister("before-send", spy)
        s3.meta.events.register("before-send", original)
    assert sent == ["inprocess"]


def test_binary_body_metadata_and_ranges_match_http(cloud: object, aws_stack: r.ResourceRefs) -> None:
    body = bytes(range(256)) * 64
    s3 = aws.client("s3")
    s3.put_object(Bucket=aws_stack.bucket, Key="tests/inprocess/blob.bin", Body=body,
                  ContentType="application/octet-stream",
                  Metadata={"notify_email": "a@example.com", "webhook-url": "https://h.example/x"})
    over_http = _http_client("s3")
    for client in (s3, over_http):
        got = client.get_object(Bucket=aws_stack.bucket, Key="tests/inprocess/blob.bin")
        assert got["Body"].read() == body
        assert got["Metadata"] == {"notify_email": "a@example.com", "webhook-url": "https://h.example/x"}
        part = client.get_object(Bucket=aws_stack.bucket, Key="tests/inprocess/blob.bin", Range="bytes=10-19")
        assert part["Body"].read() == body[10:20]
        assert part["ContentRange"] == f"bytes 10-19/{len(body)}"


def test_keys_with_spaces_and_unicode_round_trip(cloud: object, aws_stack: r.ResourceRefs) -> None:
    s3 = aws.client("s3")
    key = "tests/inprocess/ünï cødé + plus/%41 file.txt"
    s3.put_object(Bucket=aws_stack.bucket, Key=key, Body=b"x")
    listed = s3.list_objects_v2(Bucket=aws_stack.bucket, Prefix="tests/inprocess/ünï")["Contents"]
    assert [o["Key"] for o in listed] == [key]
    assert _http_client("s3").get_object(Bucket=aws_stack.bucket, Key=key)["Body"].read() == b"x"


def test_errors_come_back_as_client_errors(cloud: object, aws_stack: r.ResourceRefs) -> None:
    with pytest.raises(ClientError) as missing:
        aws.client("s3").get_object(Bucket=aws_stack.bucket, Key="tests/inprocess/nope")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"
    with pytest.raises(ClientError) as bad:
        aws.client("dynamodb").get_item(TableName=aws_stack.table, Key={"nope": {"S": "x"}})
    assert bad.value.response["Error"]["Code"] == "ValidationException"


def test_presigned_urls_and_other_processes_still_use_http(cloud: object, aws_stack: r.ResourceRefs) -> None:
    s3 = aws.client("s3")
    url = s3.generate_presigned_url("put_object", Params={
        "Bucket": aws_stack.bucket, "Key": "tests/inprocess/presigned.json", "ContentType": "application/json"})
    req = urllib.request.Request(url, data=b'{"a": 1}', method="PUT", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    got = s3.get_object(Bucket=aws_stack.bucket, Key="tests/inprocess/presigned.json")["Body"].read()
    assert json.loads(got) == {"a": 1}

    script = ("import boto3,sys; s3=boto3.client('s3'); "
              "print(s3.get_object(Bucket=sys.argv[1], Key='tests/inprocess/presigned.json')['Body'].read().decode())")
    out = subprocess.run([sys.executable, "-c", script, aws_stack.bucket], capture_output=True, text=True,
                         timeout=60, env=dict(os.environ), check=True).stdout
    assert json.loads(out) == {"a": 1}
