"""Unit tests run without a local cloud, so there is no Secrets Manager to read the signing
secret from: each test gets a random direct value (the documented test override)."""

from __future__ import annotations

import secrets

import pytest

from posterflow import config

_TEST_SECRET = secrets.token_urlsafe(32)


@pytest.fixture(autouse=True)
def signing_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(config.ENV_SIGNING_SECRET, _TEST_SECRET)
    return _TEST_SECRET
