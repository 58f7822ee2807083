"""Ranged GETs on the local cloud's S3 read only the range, and answer what moto's own code
answers: the same bytes, status and headers for closed, suffix, open, oversized, multiple and
unsatisfiable ranges."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from posterflow import aws

KEY = "tests/patches/ranges.bin"
SIZE = 1024 * 1024 + 17
# Headers that differ between any two responses (request ids, the clock).
VOLATILE = {"date", "x-amz-request-id", "x-amz-id-2", "x-amzn-requestid", "last-modified"}


def _ranges() -> list[str | None]:
    return [
        None, "bytes=100-199", "bytes=0-0", f"bytes={SIZE - 1}-{SIZE - 1}", "bytes=-22", f"bytes=-{SIZE + 5}",
        f"bytes={SIZE - 5}-", "bytes=0-", f"bytes=10-{SIZE + 100}", "bytes=0-1,5-6", "bytes=5-2", "bytes=abc",
        f"bytes={SIZE + 10}-", f"bytes={SIZE}-{SIZE + 3}",
    ]


def _answers(bucket: str) -> list[Any]:
    s3 = aws.client("s3")
    answers: list[Any] = []
    for rng in _ranges():
        kwargs: dict[str, Any] = {"Range": rng} if rng else {}
        try:
            got = s3.get_object(Bucket=bucket, Key=KEY, **kwargs)
        except ClientError as exc:
            meta = exc.response["ResponseMetadata"]
            answers.append((rng, meta["HTTPStatusCode"], exc.response["Error"]["Code"],
                            exc.response["Error"].get("Message")))
            continue
        meta = got["ResponseMetadata"]
        headers = {k: v for k, v in meta["HTTPHeaders"].items() if k not in VOLATILE}
        answers.append((rng, meta["HTTPStatusCode"], headers, got["Body"].read()))
    return answers


@pytest.fixture
def moto_s3(cloud: object) -> Iterator[None]:
    """moto's own GET for a test, then the patch again."""
    from posterflow_local.patches import s3_ranges

    with s3_ranges.PATCH.removed():
        yield


def test_same_bytes_status_and_headers_as_moto(cloud: Any, request: pytest.FixtureRequest) -> None:
    from moto.s3.responses import S3Response

    from posterflow_local.patches import s3_ranges

    bucket = cloud.refs.bucket
    data = os.urandom(SIZE)
    aws.client("s3").put_object(Bucket=bucket, Key=KEY, Body=data)
    assert S3Response.key_response is s3_ranges._key_response  # the patch is what runs first
    patched = _answers(bucket)
    request.getfixturevalue("moto_s3")
    assert S3Response.key_response is s3_ranges._original_key_response
    reference = _answers(bucket)
    assert patched == reference
    by_range = {a[0]: a for a in reference}
    assert by_range["bytes=100-199"][1] == 206 and by_range["bytes=100-199"][3] == data[100:200]
    assert by_range["bytes=-22"][3] == data[-22:] and by_range[f"bytes={SIZE - 5}-"][3] == data[-5:]
    assert by_range["bytes=0-1,5-6"][3] == data  # several ranges: the whole object
    assert by_range[f"bytes={SIZE + 10}-"][1:3] == (416, "InvalidRange")
