"""The seeds' Django snippets run unchanged against the local cloud.

The code blocks are the seed documents' own (seed 001 "Example 2", seed 003 ``PosterService``),
copied verbatim into ``tests/seed_snippets/``, and executed as they are, with stand-ins for the Django parts they touch
(models, ``request``, ``timezone``, ``JsonResponse``). They call ``http://fastapi:8000/api/...``:
within the test that host name resolves to the local cloud's API.
"""

from __future__ import annotations

import datetime as dt
import socket
import types
from typing import Any
from urllib.parse import urlsplit

import pytest

from posterflow import resources as r
from tests.integration.helpers import api, fetch

SNIPPETS = r.REPO_ROOT / "tests" / "seed_snippets"
TEMPLATE = ("<div style='font:16px sans-serif;background:#123;color:#fff;height:100px'>"
            "{{ consumer_name }}: {{ consumer_message }} ★{{ rating }}</div>")


def _snippet(name: str) -> str:
    return (SNIPPETS / name).read_text(encoding="utf-8")


class _QuerySet(list[Any]):
    def __init__(self, rows: list[Any], updates: list[tuple[dict[str, Any], dict[str, Any]]],
                 filters: dict[str, Any]) -> None:
        super().__init__(rows)
        self._updates, self._filters = updates, filters

    def update(self, **values: Any) -> int:
        self._updates.append((self._filters, values))
        return len(self)


class _Manager:
    def __init__(self, model: type) -> None:
        self.model, self.rows, self.updates = model, [], []  # type: ignore[var-annotated]

    def filter(self, **filters: Any) -> _QuerySet:
        rows = [t for t in self.rows if all(str(getattr(t, k)) == str(v) if k == "id" else getattr(t, k) == v
                                             for k, v in filters.items())]
        return _QuerySet(rows, self.updates, filters)

    def create(self, *args: Any, **kwargs: Any) -> Any:
        obj = self.model(len(self.rows) + 1, **kwargs)
        self.rows.append(obj)
        return obj


class _Testimonial:
    objects: _Manager

    def __init__(self, id: int, approved: bool = True, **_: Any) -> None:
        self.id, self.approved, self.user_id = id, approved, 7
        self.consumer_name, self.message, self.rating = f"Person {id}", f"Great session #{id}!", 4.5 + id % 2 / 2
        self.poster_url: str | None = None
        self.saved = 0

    def save(self) -> None:
        self.saved += 1


class _JsonResponse:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data


class _Clock(types.ModuleType):
    """``time`` for a snippet that polls without a bound: fails the test instead of hanging."""

    def __init__(self, limit_s: float) -> None:
        super().__init__("time")
        import time as real

        self._real, self._left = real, limit_s

    def sleep(self, seconds: float) -> None:
        self._left -= seconds
        assert self._left > 0, "the snippet's job did not complete in time"
        self._real.sleep(seconds)


@pytest.fixture
def fastapi_host(cloud: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``fastapi:8000`` → the local cloud's REST API, for this test only."""
    target = urlsplit(cloud.gateway.rest_url)
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "fastapi" and int(port) == 8000:
            return real(target.hostname, target.port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setenv("NO_PROXY", "fastapi")
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": "testimonial", "name": "Modern Testimonial Design", "html_content": TEMPLATE,
        "set_as_active": True, "format": "jpeg", "width": 200, "height": 100})
    assert status == 201, body


def test_seed_001_example_2_batch_generation(fastapi_host: None) -> None:
    code = _snippet("seed001_example2_django_view.py.txt")
    assert "generate-batch" in code and "Testimonial.objects" in code
    _Testimonial.objects = _Manager(_Testimonial)
    _Testimonial.objects.rows = [_Testimonial(i, approved=i != 3) for i in range(1, 7)]
    now = dt.datetime(2025, 1, 22, tzinfo=dt.UTC)
    scope: dict[str, Any] = {
        "Testimonial": _Testimonial,
        "request": types.SimpleNamespace(user=types.SimpleNamespace(id=123)),
        "timezone": types.SimpleNamespace(now=lambda: now),
        "time": _Clock(120),
    }
    exec(compile(code, "seed-001-example-2", "exec"), scope)
    assert scope["data"]["success"] is True and scope["status"]["status"] == "completed"
    updates = _Testimonial.objects.updates
    assert sorted(f["id"] for f, _ in updates) == ["1", "2", "4", "5", "6"]  # the approved ones
    for _, values in updates:
        assert values["poster_generated_at"] == now
        assert fetch(values["poster_url"])[:3] == b"\xff\xd8\xff"  # a JPEG, fetchable by the link


def test_seed_003_poster_service(fastapi_host: None) -> None:
    code = _snippet("seed003_poster_service.py.txt")
    assert 'FASTAPI_URL = "http://fastapi:8000/api"' in code and "/templates/generate" in code
    scope: dict[str, Any] = {"Testimonial": _Testimonial, "JsonResponse": _JsonResponse}
    _Testimonial.objects = _Manager(_Testimonial)
    exec(compile(code, "seed-003-poster-service", "exec"), scope)
    response = scope["create_testimonial"](types.SimpleNamespace(user=types.SimpleNamespace(id=1)))
    assert response.data["success"] is True, response.data
    (testimonial,) = _Testimonial.objects.rows
    assert testimonial.poster_url == response.data["poster_url"] and testimonial.saved == 1
    assert fetch(testimonial.poster_url)[:3] == b"\xff\xd8\xff"

