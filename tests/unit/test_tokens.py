"""Job tokens, expiring download tokens and webhook signatures."""

from __future__ import annotations

import pytest

from posterflow import tokens

SECRET = b"test-secret"


def test_job_token_is_per_job_and_per_secret() -> None:
    token = tokens.job_token("job1", secret=SECRET)
    assert tokens.verify_job_token("job1", token, secret=SECRET)
    assert not tokens.verify_job_token("job2", token, secret=SECRET)
    assert not tokens.verify_job_token("job1", token, secret=b"other")
    assert token != tokens.job_token("job2", secret=SECRET)


def test_download_token_valid_until_expiry() -> None:
    token = tokens.download_token("job1", ttl_s=3600, now=1_000_000, secret=SECRET)
    assert tokens.verify_download_token("job1", token, now=1_000_000 + 3599, secret=SECRET) == 1_003_600
    with pytest.raises(tokens.TokenExpired):
        tokens.verify_download_token("job1", token, now=1_003_600, secret=SECRET)


def test_download_token_tampering_is_not_mistaken_for_expiry() -> None:
    token = tokens.download_token("job1", ttl_s=10, now=1_000_000, secret=SECRET)
    expires, sig = token.split(".")
    stretched = f"{int(expires) + 10**6}.{sig}"
    with pytest.raises(tokens.TokenInvalid):
        tokens.verify_download_token("job1", stretched, now=1_000_000, secret=SECRET)
    # An edited, already-expired expiry still reads as tampered, not expired.
    with pytest.raises(tokens.TokenInvalid):
        tokens.verify_download_token("job1", f"{int(expires) - 5}.{sig}", now=2_000_000, secret=SECRET)
    with pytest.raises(tokens.TokenInvalid):
        tokens.verify_download_token("job2", token, now=1_000_000, secret=SECRET)
    with pytest.raises(tokens.TokenInvalid):
        tokens.verify_download_token("job1", token, now=1_000_000, secret=b"other")


@pytest.mark.parametrize("bad", ["", "abc", "123", ".sig", "12x.sig", "9" * 20 + ".sig"])
def test_malformed_download_tokens(bad: str) -> None:
    with pytest.raises(tokens.TokenInvalid):
        tokens.verify_download_token("job1", bad, secret=SECRET)


def test_job_and_download_tokens_do_not_stand_in_for_each_other() -> None:
    job_token = tokens.job_token("job1", secret=SECRET)
    with pytest.raises(tokens.TokenInvalid):
        tokens.verify_download_token("job1", f"9999999999.{job_token}", now=0, secret=SECRET)


def test_default_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTERFLOW_SIGNING_SECRET", "one")
    token = tokens.job_token("job1")
    monkeypatch.setenv("POSTERFLOW_SIGNING_SECRET", "two")
    assert not tokens.verify_job_token("job1", token)


def test_webhook_signature_round_trip_and_failures() -> None:
    body = b'{"job_id":"job1","status":"completed"}'
    header = tokens.webhook_signature(body, secret=SECRET, timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    tokens.verify_webhook_signature(body, header, secret=SECRET, now=1_700_000_100)
    with pytest.raises(tokens.TokenInvalid):
        tokens.verify_webhook_signature(body + b" ", header, secret=SECRET, now=1_700_000_100)
    with pytest.raises(tokens.TokenExpired):
        tokens.verify_webhook_signature(body, header, secret=SECRET, now=1_700_001_000)
    with pytest.raises(tokens.TokenInvalid):
        tokens.verify_webhook_signature(body, "v1=abc", secret=SECRET)


def test_non_ascii_digits_are_malformed_not_numbers() -> None:
    # str.isdigit() accepts "\u0661\u0662\u0663" (Arabic-Indic 123) and int() reads it as 123, so a
    # signature made for t=123 verified under a timestamp no receiver would write.
    digest = tokens.webhook_signature(b"{}", secret=b"k", timestamp=123).split("v1=", 1)[1]
    with pytest.raises(tokens.TokenInvalid):
        tokens.verify_webhook_signature(b"{}", f"t=\u0661\u0662\u0663,v1={digest}", secret=b"k", now=123)
