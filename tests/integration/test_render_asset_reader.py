"""The render engine's asset reader against the local cloud's S3: bytes, missing, too large."""

from __future__ import annotations

import uuid

import pytest

from posterflow import aws
from posterflow.render import engine
from posterflow.render.engine import _read_asset


@pytest.fixture
def bucket(aws_stack: object) -> str:
    name = f"assets-{uuid.uuid4().hex[:8]}"
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="assets/acme/logo.png", Body=b"PNG" * 10, ContentType="image/png")
    return name


def test_read_asset_answers_bytes_missing_and_too_large(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _read_asset(bucket, "assets/acme/logo.png", head=False) == ("image/png", b"PNG" * 10)
    assert _read_asset(bucket, "assets/acme/logo.png", head=True) == ("image/png", b"")
    assert _read_asset(bucket, "assets/acme/nope.png", head=False) is None
    assert _read_asset(bucket, "assets/acme/nope.png", head=True) is None
    monkeypatch.setattr(engine, "MAX_ASSET_BYTES", 10)
    assert _read_asset(bucket, "assets/acme/logo.png", head=False) == 30
