"""Schemathesis against ``GET /api/openapi.json`` on the local cloud: no 500s, and responses
conform to the schema (content type and body). Examples are bounded per operation so the
run stays well under a minute; every route is included (bad ids and templates make the
side-effecting ones answer 4xx, which is the point)."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from posterflow_local.cloud import LocalCloud

CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]


# schemathesis' pytest plugin (``from_fixture``) does not run on pytest 9 (it reads
# ``request.node._nodeid``), so each operation gets its own hypothesis test run here.


def test_api_conforms_and_never_500s(cloud: LocalCloud) -> None:
    base = cloud.gateway.rest_url
    schema = schemathesis.openapi.from_url(f"{base}/api/openapi.json")
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            case.call_and_validate(base_url=base, timeout=60, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # a report for every operation, not only the first
            failures[operation.label] = f"{type(exc).__name__}: {exc}"[:2000]
    assert operations >= 15, "the OpenAPI document lists fewer operations than the API has"
    assert failures == {}, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
