"""A template that never finishes loading fails with a timeout error; the engine carries on."""

from __future__ import annotations

import pytest

from posterflow.render.engine import RenderEngine, RenderRequest, RenderTimeout
from posterflow.render.sizes import resolve_size
from tests.e2e.conftest import Servers

pytestmark = pytest.mark.browser

SIZE = resolve_size(width=200, height=200)


def test_resource_that_never_answers_times_out(engine: RenderEngine, servers: Servers) -> None:
    html = f"<html><body><img src='{servers.hang.url}/never.png'></body></html>"
    with pytest.raises(RenderTimeout, match=r"did not finish within 1\.5s"):
        engine.render(RenderRequest(html=html, size=SIZE, timeout_s=1.5, request_id="hang"))
    assert servers.hang.requests, "the request should have reached the (allow-listed) hanging server"
    after = engine.render(RenderRequest(html="<p>next</p>", size=SIZE))
    assert after.data.startswith(b"\x89PNG")


def test_script_that_never_ends_times_out(engine: RenderEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTERFLOW_TEMPLATE_JAVASCRIPT", "allow")
    html = "<html><body><p>spin</p><script>while (true) {}</script></body></html>"
    with pytest.raises(RenderTimeout) as err:
        engine.render(RenderRequest(html=html, size=SIZE, javascript=True, timeout_s=1.5))
    assert err.value.code == "timeout"
    after = engine.render(RenderRequest(html="<p>next</p>", size=SIZE, javascript=True))
    assert after.data.startswith(b"\x89PNG")
