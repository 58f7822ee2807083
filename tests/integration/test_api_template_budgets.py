"""Template budgets through the REST API: tiny hostile templates are refused (upload) or fail
their item (generate) with a 4xx within a couple of seconds, and the API keeps answering."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.integration.helpers import api

# Well under what the templates take unbounded (minutes, GBs), with room for a loaded machine.
BOUNDED_S = 6.0


def _upload(cloud: Any, html: str) -> tuple[int, Any, float]:
    start = time.monotonic()
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": f"budget-{uuid.uuid4().hex[:6]}", "name": "b", "html_content": html,
        "width": 200, "height": 100, "format": "png"})
    return status, body, time.monotonic() - start


@pytest.mark.parametrize("html", [
    '{{ "a" * 10**10 }}',
    "{{ 9 ** (9 ** 9) }}",
    '{{ "a"|center(999999999) }}',
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "{% for a in b %}" * 30 + "{% endfor %}" * 30,
])
def test_upload_refuses_budget_bombs_quickly(cloud: Any, html: str) -> None:
    status, body, elapsed = _upload(cloud, html)
    assert 400 <= status < 500, body
    assert elapsed < BOUNDED_S, f"upload took {elapsed:.1f} s"
    assert "budget" in body["error"]["message"] or "deep" in body["error"]["message"], body
    assert body["error"]["code"] in ("template_timeout", "template_too_large", "template_too_deep"), body
    status, _, _ = api(cloud, "GET", "/health")
    assert status == 200


def _generate(cloud: Any, template_id: str, data: dict[str, Any]) -> tuple[int, Any, float]:
    start = time.monotonic()
    status, body, _ = api(cloud, "POST", "/api/generate", {"template_id": template_id, "custom_data": data})
    return status, body, time.monotonic() - start


def test_data_driven_loops_time_out_at_generate(cloud: Any) -> None:
    # Harmless with the upload's sample data; only the request's data makes it loop 10**10 times.
    status, body, _ = _upload(cloud, "<p>{% for a in range(n|int) %}{% for b in range(n|int) %}"
                                     "{% endfor %}{% endfor %}{{ n }}</p>")
    assert status == 201, body
    template_id = body["template_id"]
    status, body, _ = _generate(cloud, template_id, {"n": "3"})
    assert status == 200, body
    status, body, elapsed = _generate(cloud, template_id, {"n": "100000"})
    assert status == 422, body
    assert elapsed < BOUNDED_S, f"generate took {elapsed:.1f} s"
    assert body["error"]["code"] == "template_timeout", body
    assert "budget" in body["error"]["message"], body
    assert api(cloud, "GET", "/health")[0] == 200


def test_data_driven_recursion_is_a_4xx_not_a_502(cloud: Any) -> None:
    status, body, _ = _upload(cloud, "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{% endif %}{% endmacro %}"
                                     "<p>{{ f(depth|int) }}{{ depth }}</p>")
    assert status == 201, body
    template_id = body["template_id"]
    status, body, elapsed = _generate(cloud, template_id, {"depth": "100000"})
    assert status == 422, body
    assert elapsed < BOUNDED_S
    assert body["error"]["code"] == "template_too_deep", body
    assert "deep" in body["error"]["message"], body


def test_data_driven_growth_is_too_large(cloud: Any) -> None:
    status, body, _ = _upload(cloud, "<p>{{ 'x' * (times|int) }}</p>")
    assert status == 201, body
    template_id = body["template_id"]
    status, body, elapsed = _generate(cloud, template_id, {"times": str(10**10)})
    assert status == 422, body
    assert elapsed < BOUNDED_S
    assert body["error"]["code"] == "template_too_large", body
    assert "budget" in body["error"]["message"], body
