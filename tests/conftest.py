"""Shared fixtures: one local cloud per test session (embedded AWS with the stack's resources,
the Lambda runtime, event sources and API Gateway), on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from posterflow import resources as r


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from posterflow_local.cloud import CloudOptions, LocalCloud

    out: Path = tmp_path_factory.mktemp("out")
    local = LocalCloud(CloudOptions(aws_port=0, api_port=0, ws_port=0, out_dir=out))
    local.start()
    yield local
    local.stop()


@pytest.fixture(scope="session")
def aws_stack(cloud: object) -> r.ResourceRefs:
    """The provisioned resources; the function environment is exported to this process."""
    refs = cloud.refs  # type: ignore[attr-defined]
    assert refs is not None
    return refs  # type: ignore[no-any-return]
