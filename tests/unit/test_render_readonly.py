"""The engine's read-only rules without a browser: which requests are refused, how assets are read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from posterflow import aws
from posterflow.render import engine
from posterflow.render.engine import RenderRequest, _read_asset, _refusal


@pytest.mark.parametrize(
    ("method", "headers", "body", "reason"),
    [
        ("GET", {"accept": "image/*"}, None, None),
        ("head", {}, None, None),
        ("PUT", {}, b"x", "method PUT is not allowed"),
        ("POST", {}, None, "method POST is not allowed"),
        ("OPTIONS", {}, None, "method OPTIONS is not allowed"),
        ("GET", {"X-Amz-Copy-Source": "b/k"}, None, "header x-amz-copy-source is not allowed"),
        ("GET", {"authorization": "AWS4-HMAC-SHA256 x"}, None, "header authorization is not allowed"),
        ("GET", {}, b"smuggled", "a request body is not allowed"),
    ],
)
def test_only_plain_reads_pass(method: str, headers: dict[str, str], body: bytes | None, reason: str | None) -> None:
    assert _refusal(method, headers, body) == reason


def test_asset_prefix_must_be_a_tenant_prefix() -> None:
    assert RenderRequest(html="x", asset_prefix="assets/acme/").asset_prefix == "assets/acme/"
    assert RenderRequest(html="x").asset_prefix is None
    with pytest.raises(ValueError):
        RenderRequest(html="x", asset_prefix="assets/")
    with pytest.raises(ValueError):
        RenderRequest(html="x", asset_prefix="outputs/acme/")


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto import mock_aws

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    aws.reset_clients()
    with mock_aws():
        s3 = aws.client("s3")
        s3.create_bucket(Bucket="posters")
        s3.put_object(Bucket="posters", Key="assets/acme/logo.png", Body=b"PNG" * 10, ContentType="image/png")
        yield "posters"
    aws.reset_clients()


def test_read_asset_answers_bytes_missing_and_too_large(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _read_asset(bucket, "assets/acme/logo.png", head=False) == ("image/png", b"PNG" * 10)
    assert _read_asset(bucket, "assets/acme/logo.png", head=True) == ("image/png", b"")
    assert _read_asset(bucket, "assets/acme/nope.png", head=False) is None
    assert _read_asset(bucket, "assets/acme/nope.png", head=True) is None
    monkeypatch.setattr(engine, "MAX_ASSET_BYTES", 10)
    assert _read_asset(bucket, "assets/acme/logo.png", head=False) == 30
