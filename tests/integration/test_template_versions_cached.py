"""template_store.get on the local cloud: a warm instance reads a version record once (they
never change), while the ACTIVE pointer behind ``<section>_latest`` is read on every call, so
activating another version is seen at once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from posterflow import aws
from posterflow.posters import template_store


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sort keys of the template GetItems made."""
    made: list[str] = []
    ddb = aws.client("dynamodb")
    real = ddb.get_item

    def counted(**kwargs: Any) -> Any:
        made.append(str(kwargs["Key"]["SK"]["S"]))
        return real(**kwargs)

    monkeypatch.setattr(ddb, "get_item", counted)
    return made


def test_a_version_is_read_once_and_the_active_pointer_every_time(cloud: Any, reads: list[str]) -> None:
    tenant, section = f"tv-{uuid.uuid4().hex[:8]}", f"cached-{uuid.uuid4().hex[:6]}"
    v1 = template_store.upload(section, "One", "<p>{{ name }}</p>", tenant=tenant)
    reads.clear()
    for _ in range(3):
        got = template_store.get(f"{section}_latest", tenant=tenant)
        assert got.version == v1.version and got.is_active and got.name == "One"
    assert reads == ["ACTIVE"] * 3  # the version record came with the upload's own read

    v2 = template_store.upload(section, "Two", "<p>{{ name }}!</p>", set_as_active=False, tenant=tenant)
    assert template_store.get(f"{section}_latest", tenant=tenant).version == v1.version
    older = template_store.get(f"{section}_v{v1.version}", tenant=tenant)
    assert older.is_active
    template_store.activate(f"{section}_v{v2.version}", tenant=tenant)
    reads.clear()
    latest = template_store.get(f"{section}_latest", tenant=tenant)
    assert latest.version == v2.version and latest.is_active and latest.name == "Two"
    # The remembered v1 no longer says it is active: is_active comes from the pointer.
    assert not template_store.get(f"{section}_v{v1.version}", tenant=tenant).is_active
    assert reads == ["ACTIVE", "ACTIVE"]


def test_a_missing_version_is_not_remembered(cloud: Any, reads: list[str]) -> None:
    tenant, section = f"tv-{uuid.uuid4().hex[:8]}", f"missing-{uuid.uuid4().hex[:6]}"
    template_store.upload(section, "One", "<p>{{ name }}</p>", tenant=tenant)
    for _ in range(2):
        with pytest.raises(template_store.TemplateNotFound):
            template_store.get(f"{section}_v7", tenant=tenant)
    assert reads.count("V#000007") == 2
