"""NetPolicy: default deny; allow-listed hosts must also resolve to public addresses."""

from __future__ import annotations

import asyncio

import pytest

from posterflow.net.policy import (
    AllowRule,
    AssetBucket,
    AssetRefused,
    NetPolicy,
    PolicyError,
    asset_bucket_rules,
    asset_key,
    check_asset_prefix,
)

DNS = {
    "cdn.example.com": ["93.184.216.34"],
    "sneaky.example.com": ["127.0.0.1"],
    "meta.example.com": ["169.254.169.254"],
    "private.example.com": ["10.1.2.3", "93.184.216.34"],
    "v6.example.com": ["::ffff:192.168.0.1"],
}


async def fake_resolver(host: str, port: int) -> list[str]:
    if host not in DNS:
        raise OSError("name not known")
    return DNS[host]


def check(policy: NetPolicy, url: str) -> bool:
    return asyncio.run(policy.check(url)).allowed


def policy(*rules: str | AllowRule) -> NetPolicy:
    return NetPolicy(rules, resolver=fake_resolver)


def test_data_urls_always_allowed_everything_else_denied_by_default() -> None:
    p = policy()
    assert check(p, "data:image/png;base64,AAAA")
    assert check(p, "about:blank")
    assert not check(p, "https://cdn.example.com/a.png")
    assert not check(p, "file:///etc/passwd")
    assert not check(p, "ftp://cdn.example.com/a")
    assert not check(p, "chrome://settings")


def test_allow_list_matches_scheme_host_port_and_path_prefix() -> None:
    p = policy("https://cdn.example.com/assets/")
    assert check(p, "https://cdn.example.com/assets/logo.png")
    assert check(p, "https://CDN.example.com./assets/logo.png")
    assert not check(p, "https://cdn.example.com/private/logo.png")
    assert not check(p, "http://cdn.example.com/assets/logo.png")
    assert not check(p, "https://cdn.example.com:8443/assets/logo.png")
    assert not check(p, "https://cdn.example.com.evil.net/assets/logo.png")
    assert not check(p, "https://cdn.example.com@evil.net/assets/logo.png")
    assert not check(p, "https://user@cdn.example.com/assets/logo.png")
    assert not check(p, "https://cdn.example.com/assets/%2e%2e/private/x")


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8080/",
        "http://[::1]/",
        "http://10.0.0.5/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://0.0.0.0/",
        "http://[fe80::1]/",
        "http://sneaky.example.com/",
        "http://meta.example.com/",
        "http://private.example.com/",
        "http://v6.example.com/",
        "http://unknown.example.com/",
    ],
)
def test_internal_addresses_refused_even_when_allow_listed(url: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    p = policy(f"{parts.scheme}://{parts.netloc}/")
    decision = asyncio.run(p.check(url))
    assert not decision.allowed
    assert decision.reason


def test_allow_private_rule_admits_loopback_but_never_metadata() -> None:
    p = policy(
        AllowRule.parse("http://127.0.0.1:4566/bucket/assets/", allow_private=True),
        AllowRule.parse("http://169.254.169.254/", allow_private=True),
    )
    assert check(p, "http://127.0.0.1:4566/bucket/assets/a.png")
    assert not check(p, "http://127.0.0.1:4566/bucket/outputs/a.png")
    assert not check(p, "http://169.254.169.254/latest/meta-data/")


def test_public_host_allowed() -> None:
    assert check(policy("https://cdn.example.com"), "https://cdn.example.com/x/y.png")


@pytest.mark.parametrize("entry", ["cdn.example.com", "file:///etc/", "https://u:p@cdn.example.com/", "https://h/?q=1"])
def test_malformed_rules_rejected(entry: str) -> None:
    with pytest.raises(PolicyError):
        AllowRule.parse(entry)


def test_asset_bucket_rules_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    hosts = {(r.host, r.path_prefix) for r in asset_bucket_rules("posters")}
    assert ("posters.s3.eu-west-1.amazonaws.com", "/assets/") in hosts
    assert ("s3.eu-west-1.amazonaws.com", "/posters/assets/") in hosts
    assert not any(r.allow_private for r in asset_bucket_rules("posters"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    (local,) = asset_bucket_rules("posters")
    assert (local.host, local.port, local.path_prefix) == ("127.0.0.1", 5000, "/posters/assets/")
    # The engine serves asset URLs itself and never connects to the endpoint: no loopback pass.
    assert not local.allow_private


def test_from_env_reads_the_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POSTERFLOW_BUCKET", raising=False)
    monkeypatch.delenv("POSTERFLOW_ASSET_URLS", raising=False)
    monkeypatch.setenv("POSTERFLOW_RENDER_ALLOWLIST", "https://cdn.example.com/a/, https://fonts.example.com")
    p = NetPolicy.from_env()
    assert {r.host for r in p.rules} == {"cdn.example.com", "fonts.example.com"}


def test_asset_urls_are_recognised_and_yield_the_path_after_assets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    p = NetPolicy(assets=AssetBucket.for_bucket("posters"))
    assert p.asset_path("http://127.0.0.1:5000/posters/assets/logo.png") == "logo.png"
    assert p.asset_path("http://127.0.0.1:5000/posters/assets/a/b%20c.png?v=2") == "a/b c.png"
    # Percent-encoded letters do not slip past the match (S3 would decode them).
    assert p.asset_path("http://127.0.0.1:5000/posters/%61ssets/logo.png") == "logo.png"
    assert p.asset_path("http://127.0.0.1:5000/posters/outputs/x.png") is None
    assert p.asset_path("http://127.0.0.1:5000/other/assets/x.png") is None
    assert p.asset_path("http://127.0.0.1:5001/posters/assets/x.png") is None
    assert p.asset_path("data:image/png;base64,AAAA") is None
    assert NetPolicy().asset_path("http://127.0.0.1:5000/posters/assets/logo.png") is None


def test_from_env_knows_the_asset_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("POSTERFLOW_BUCKET", "posters")
    p = NetPolicy.from_env()
    assert p.assets is not None and p.assets.bucket == "posters"
    assert p.asset_path("https://posters.s3.eu-west-1.amazonaws.com/assets/x/logo.png") == "x/logo.png"
    assert p.asset_path("https://s3.eu-west-1.amazonaws.com/posters/assets/logo.png") == "logo.png"
    monkeypatch.delenv("POSTERFLOW_BUCKET")
    assert NetPolicy.from_env().assets is None


def test_asset_key_is_scoped_under_the_tenant_prefix() -> None:
    assert asset_key("assets/acme/", "logo.png") == "assets/acme/logo.png"
    assert asset_key("assets/acme/", "fonts/a b.woff2") == "assets/acme/fonts/a b.woff2"


@pytest.mark.parametrize(
    "relative",
    ["", "dir/", "../other/logo.png", "a/../../other/x", "./x", "a//b", "a\\..\\b", "%2e%2e/x", "a%2fb", "x\x00"],
)
def test_asset_key_refuses_traversal_listing_and_odd_paths(relative: str) -> None:
    with pytest.raises(AssetRefused):
        asset_key("assets/acme/", relative)


def test_asset_key_needs_a_tenant_prefix() -> None:
    with pytest.raises(AssetRefused, match="asset_prefix"):
        asset_key(None, "logo.png")


@pytest.mark.parametrize(
    "prefix", ["assets/", "assets/acme", "uploads/acme/", "assets/../x/", "assets/a//", "/assets/a/"]
)
def test_malformed_asset_prefixes_rejected(prefix: str) -> None:
    with pytest.raises(ValueError):
        check_asset_prefix(prefix)
    assert check_asset_prefix("assets/acme/") == "assets/acme/"
