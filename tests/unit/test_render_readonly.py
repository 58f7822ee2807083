"""The engine's read-only rules without a browser: which requests are refused."""

from __future__ import annotations

import pytest

from posterflow.render.engine import RenderRequest, _refusal


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
