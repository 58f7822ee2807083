"""The source resolver: every kind parsed once, and only the tenant's own objects."""

from __future__ import annotations

import pytest

from posterflow.errors import Reason
from posterflow.net import sources

BUCKET = "posterflow-data"


@pytest.fixture(autouse=True)
def _bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTERFLOW_BUCKET", BUCKET)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")


@pytest.mark.parametrize("text", [
    "outputs/acme/job1/000000.png", "uploads/acme/job1/photo.jpg", "assets/acme/logo.png",
    f"s3://{BUCKET}/outputs/acme/job1/000000.png", "/outputs/acme/x.png",
])
def test_own_objects_resolve_to_their_key(text: str) -> None:
    found = sources.parse(text, tenant="acme")
    assert found.kind == "object" and found.key == text.removeprefix(f"s3://{BUCKET}").lstrip("/")


@pytest.mark.parametrize("text", [
    "outputs/other/job1/000000.png", "outputs/acmeX/x.png", "inputs/acme/x.png", "acme/x.png",
    f"s3://{BUCKET}/outputs/other/x.png", "s3://another-bucket/outputs/acme/x.png",
    "outputs/acme/../other/x.png", "outputs/acme//x.png", "", "   ",
    "file:///etc/passwd", "ftp://example.com/x.png", "gopher://x/",
])
def test_anything_else_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(sources.SourceRefused) as refused:
        sources.parse(text, tenant="acme", what="logo")
    assert "logo" in refused.value.message and refused.value.reason == Reason.SOURCE_REFUSED


def test_bucket_asset_urls_mean_the_tenants_assets() -> None:
    found = sources.parse(f"http://127.0.0.1:4566/{BUCKET}/assets/brand/logo.png", tenant="acme")
    assert (found.kind, found.key) == ("object", "assets/acme/brand/logo.png")
    with pytest.raises(sources.SourceRefused):
        sources.parse(f"http://127.0.0.1:4566/{BUCKET}/assets/../outputs/other/x.png", tenant="acme")


def test_data_uris_and_other_urls_are_their_own_kinds() -> None:
    assert sources.parse("data:text/plain,abc", tenant="acme").kind == "data"
    found = sources.parse("https://cdn.example.com/a.png", tenant="acme")
    assert (found.kind, found.url) == ("url", "https://cdn.example.com/a.png")
    assert sources.read(sources.parse("data:text/plain,abc", tenant="acme")) == b"abc"
