"""The signing secret: read from Secrets Manager at run time, rotation tolerated, no fallback.

Secrets Manager is a small fake here (versions by stage, call counts), so these tests run
without a local cloud and can rotate the secret at will.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from posterflow import config, signing_keys, tokens

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:posterflow/signing-secret-AbCdEf"
OLD_CONSTANT = b"posterflow-local-dev-secret"


class FakeSecretsManager:
    """``get_secret_value`` by staging label, as Secrets Manager answers it."""

    def __init__(self, current: str) -> None:
        self.stages: dict[str, str] = {"AWSCURRENT": current}
        self.calls: list[str] = []

    def rotate(self, new: str) -> None:
        """What ``put-secret-value`` does: the new value becomes current, the old one previous."""
        self.stages = {"AWSCURRENT": new, "AWSPREVIOUS": self.stages["AWSCURRENT"]}

    def get_secret_value(self, SecretId: str, VersionStage: str = "AWSCURRENT") -> dict[str, Any]:
        self.calls.append(VersionStage)
        if SecretId != ARN:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetSecretValue")
        if VersionStage not in self.stages:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException",
                                         "Message": f"no secret value for staging label: {VersionStage}"}},
                              "GetSecretValue")
        return {"ARN": ARN, "SecretString": self.stages[VersionStage], "VersionStages": [VersionStage]}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """signing_keys' monotonic clock, moved by hand (the refresh rate limit reads it)."""
    now = [1_000.0]
    monkeypatch.setattr(signing_keys, "_monotonic", lambda: now[0])
    return now


@pytest.fixture
def fake_sm(monkeypatch: pytest.MonkeyPatch, clock: list[float]) -> Iterator[FakeSecretsManager]:
    fake = FakeSecretsManager("first-version")
    monkeypatch.delenv(config.ENV_SIGNING_SECRET, raising=False)
    monkeypatch.setenv(config.ENV_SIGNING_SECRET_ARN, ARN)
    monkeypatch.setattr(signing_keys, "_client", lambda: fake)
    signing_keys.clear_cache()
    yield fake
    signing_keys.clear_cache()


def new_instance() -> None:
    """A fresh execution environment: nothing cached."""
    signing_keys.clear_cache()


# ---- no secret, no start ---------------------------------------------------------------------


def test_without_arn_or_direct_value_the_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.ENV_SIGNING_SECRET, raising=False)
    monkeypatch.delenv(config.ENV_SIGNING_SECRET_ARN, raising=False)
    with pytest.raises(config.ConfigError, match=config.ENV_SIGNING_SECRET_ARN):
        config.signing_secret()
    with pytest.raises(config.ConfigError, match=config.ENV_SIGNING_SECRET_ARN):
        tokens.job_token("job1")
    with pytest.raises(config.ConfigError):
        tokens.verify_download_token("job1", tokens.download_token("job1", secret=OLD_CONSTANT))


def test_the_old_public_fallback_is_gone_from_the_source() -> None:
    sources = Path(config.__file__).parent
    for name in ("config.py", "tokens.py", "signing_keys.py", "tenancy.py"):
        assert OLD_CONSTANT.decode() not in (sources / name).read_text(), name


def test_direct_value_is_a_local_override(monkeypatch: pytest.MonkeyPatch, fake_sm: FakeSecretsManager) -> None:
    monkeypatch.setenv(config.ENV_SIGNING_SECRET, "direct-value")
    assert config.signing_secret() == b"direct-value"
    assert config.previous_signing_secret() is None
    assert fake_sm.calls == []


# ---- read from Secrets Manager, cached -------------------------------------------------------


def test_secret_is_read_from_secrets_manager_and_cached(fake_sm: FakeSecretsManager, clock: list[float]) -> None:
    assert config.signing_secret() == b"first-version"
    assert config.signing_secret() == b"first-version"
    assert fake_sm.calls == ["AWSCURRENT"]
    clock[0] += signing_keys.MAX_AGE_S + 1
    fake_sm.rotate("second-version")
    # Powertools' cache runs on wall time; a fresh instance stands in for "5 minutes later".
    new_instance()
    assert config.signing_secret() == b"second-version"


def test_denied_read_is_a_clear_error_not_a_missing_version(fake_sm: FakeSecretsManager,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.ENV_SIGNING_SECRET_ARN, ARN + "-other")
    with pytest.raises(config.ConfigError, match="AccessDenied"):
        config.signing_secret()


# ---- rotation ------------------------------------------------------------------------------


def test_tokens_signed_before_a_rotation_stay_valid(fake_sm: FakeSecretsManager) -> None:
    job = tokens.job_token("job1")
    link = tokens.download_token("job1", ttl_s=3600, now=1_000_000)
    fake_sm.rotate("second-version")
    new_instance()
    assert tokens.job_token("job1") != job  # new tokens use the new version
    assert tokens.verify_job_token("job1", job)
    assert tokens.verify_download_token("job1", link, now=1_000_000 + 3599) == 1_003_600
    with pytest.raises(tokens.TokenExpired):
        tokens.verify_download_token("job1", link, now=1_003_600)


def test_two_rotations_retire_a_token(fake_sm: FakeSecretsManager) -> None:
    job = tokens.job_token("job1")
    fake_sm.rotate("second-version")
    fake_sm.rotate("third-version")
    new_instance()
    assert not tokens.verify_job_token("job1", job)


def test_missing_previous_version_is_normal_and_not_asked_for_on_every_bad_token(
        fake_sm: FakeSecretsManager, clock: list[float]) -> None:
    assert tokens.verify_job_token("job1", tokens.job_token("job1"))
    for _ in range(50):
        assert not tokens.verify_job_token("job1", "forged")
        with pytest.raises(tokens.TokenInvalid):
            tokens.verify_download_token("job1", "9999999999.forged")
    # Current once, previous once (its absence is remembered), one forced re-read of both.
    assert fake_sm.calls.count("AWSPREVIOUS") <= 2 and fake_sm.calls.count("AWSCURRENT") <= 2
    clock[0] += signing_keys.REFRESH_INTERVAL_S + 1
    assert not tokens.verify_job_token("job1", "forged")
    assert fake_sm.calls.count("AWSCURRENT") <= 3


def test_previous_version_is_looked_for_again_once_the_current_one_changes(fake_sm: FakeSecretsManager) -> None:
    old = tokens.job_token("job1")
    assert not tokens.verify_job_token("job1", "forged")  # learns "no previous"; uses up the refresh
    fake_sm.rotate("second-version")
    signing_keys.current(ARN, force=True)  # this instance's cached current expires and is re-read
    # No refresh is allowed yet (rate limit): the old token is found through the previous version.
    assert tokens.verify_job_token("job1", old)


def test_instance_with_a_stale_cache_accepts_tokens_of_the_new_version(
        fake_sm: FakeSecretsManager, clock: list[float]) -> None:
    assert config.signing_secret() == b"first-version"  # this instance caches the old version
    fake_sm.rotate("second-version")
    fresh = tokens.job_token("job1", secret=b"second-version")  # made by an instance that re-read it
    clock[0] += signing_keys.REFRESH_INTERVAL_S + 1
    assert tokens.verify_job_token("job1", fresh)
    assert config.signing_secret() == b"second-version"


def test_explicit_secret_never_touches_secrets_manager(fake_sm: FakeSecretsManager) -> None:
    token = tokens.job_token("job1", secret=b"s")
    assert tokens.verify_job_token("job1", token, secret=b"s")
    assert not tokens.verify_job_token("job1", token, secret=b"other")
    assert fake_sm.calls == []


def test_non_ascii_tokens_are_refused_not_raised(fake_sm: FakeSecretsManager) -> None:
    assert not tokens.verify_job_token("job1", "jöb-token", secret=b"s")
    with pytest.raises(tokens.TokenInvalid):
        tokens.verify_download_token("job1", "9999999999.sïg", secret=b"s")


# ---- webhooks: receivers can move over --------------------------------------------------------


def test_webhook_signed_with_several_secrets_verifies_with_any() -> None:
    body = b'{"job_id":"job1"}'
    header = tokens.webhook_signature(body, secret=(b"new", b"old"), timestamp=1_700_000_000)
    assert header.count("v1=") == 2
    tokens.verify_webhook_signature(body, header, secret=b"old", now=1_700_000_000)
    tokens.verify_webhook_signature(body, header, secret=b"new", now=1_700_000_000)
    with pytest.raises(tokens.TokenInvalid):
        tokens.verify_webhook_signature(body, header, secret=b"neither", now=1_700_000_000)
    single = tokens.webhook_signature(body, secret=b"new", timestamp=1_700_000_000)
    assert header.startswith(single + ",v1=") and single.count("v1=") == 1  # one secret: unchanged format
