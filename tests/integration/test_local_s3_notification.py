"""A file put under uploads/ reaches the splitter through S3 → SQS → event source."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

from posterflow import aws
from tests.integration.helpers import wait_for


def test_zip_upload_invokes_splitter_with_original_key(cloud: Any) -> None:
    received: list[dict[str, Any]] = []
    split_url = cloud.refs.queue_urls["split"]
    poller = next(p for p in cloud.sqs_pollers if p.queue_url == split_url)
    real = poller.function

    def recorder(event: dict[str, Any], context: Any) -> dict[str, Any]:
        received.extend(event["Records"])
        return {"batchItemFailures": []}

    poller.function = cloud.register_function("t-split-recorder", recorder)
    try:
        key = "uploads/team photos/été 2026+final.zip"
        aws.client("s3").put_object(Bucket=cloud.refs.bucket, Key=key, Body=b"PK\x05\x06" + b"\0" * 18)
        records = wait_for(lambda: [r for r in received if "Records" in json.loads(r["body"])], what="S3 event")
    finally:
        poller.function = real
    s3_event = json.loads(records[0]["body"])["Records"][0]
    assert s3_event["eventSource"] == "aws:s3"
    assert s3_event["s3"]["bucket"]["name"] == cloud.refs.bucket
    # S3 events carry URL-encoded keys (spaces as '+'); decoding gives back the original key.
    assert unquote_plus(s3_event["s3"]["object"]["key"]) == key
