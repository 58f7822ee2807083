"""Shared fixtures: an embedded AWS (moto server) with the stack's resources provisioned."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from posterflow import resources as r


@pytest.fixture(scope="session")
def aws_stack() -> Iterator[r.ResourceRefs]:
    """The embedded AWS on a free port with every resource of the spec created, and the
    function environment (bucket, table, queue URLs ...) exported to this process."""
    from posterflow_local.embedded_aws import EmbeddedAWS
    from posterflow_local.provision import provision

    server = EmbeddedAWS(port=0)
    server.start()
    spec = r.stack_spec()
    refs = provision(spec, server.endpoint)
    os.environ.update(r.function_environment(spec, spec.function("api"), refs))
    yield refs
    server.stop()
