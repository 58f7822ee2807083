"""Ranged GETs on the local cloud's S3 return exactly the requested bytes."""

from __future__ import annotations

import os
from typing import Any

import pytest
from botocore.exceptions import ClientError

from posterflow import aws


def test_ranges(cloud: Any) -> None:
    s3, bucket = aws.client("s3"), cloud.refs.bucket
    data = os.urandom(3 * 1024 * 1024 + 17)
    s3.put_object(Bucket=bucket, Key="t/ranges.bin", Body=data)

    def get(rng: str) -> tuple[bytes, dict[str, Any]]:
        resp = s3.get_object(Bucket=bucket, Key="t/ranges.bin", Range=rng)
        return resp["Body"].read(), resp

    body, resp = get("bytes=100-199")
    assert body == data[100:200] and resp["ContentRange"] == f"bytes 100-199/{len(data)}"
    assert get("bytes=-22")[0] == data[-22:]
    assert get(f"bytes={len(data) - 5}-")[0] == data[-5:]
    assert get(f"bytes=10-{len(data) + 100}")[0] == data[10:]
    # Several ranges: S3 answers with the whole object.
    assert s3.get_object(Bucket=bucket, Key="t/ranges.bin", Range="bytes=0-1,5-6")["Body"].read() == data
    assert s3.get_object(Bucket=bucket, Key="t/ranges.bin")["Body"].read() == data
    with pytest.raises(ClientError) as exc:
        get(f"bytes={len(data) + 10}-")
    assert exc.value.response["Error"]["Code"] == "InvalidRange"
