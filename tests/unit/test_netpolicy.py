"""NetPolicy: default deny; allow-listed hosts must also resolve to public addresses."""

from __future__ import annotations

import asyncio

import pytest

from posterflow.render.netpolicy import AllowRule, NetPolicy, PolicyError, asset_bucket_rules

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
    assert local.allow_private


def test_from_env_reads_the_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POSTERFLOW_BUCKET", raising=False)
    monkeypatch.delenv("POSTERFLOW_ASSET_URLS", raising=False)
    monkeypatch.setenv("POSTERFLOW_RENDER_ALLOWLIST", "https://cdn.example.com/a/, https://fonts.example.com")
    p = NetPolicy.from_env()
    assert {r.host for r in p.rules} == {"cdn.example.com", "fonts.example.com"}
