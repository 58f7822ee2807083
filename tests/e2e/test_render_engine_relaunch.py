"""The browser is relaunched after a crash (here: killed) and after ``restart_after`` renders."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from posterflow.net.policy import NetPolicy
from posterflow.render.engine import EngineConfig, RenderEngine, RenderRequest
from posterflow.render.sizes import resolve_size
from posterflow_local.faults import chromium_pids

pytestmark = pytest.mark.browser

SIZE = resolve_size(width=200, height=120)


def _browser_pids() -> set[int]:
    """Chromium main processes descending from this test process."""
    return set(chromium_pids())


@pytest.fixture
def private_engine() -> Iterator[RenderEngine]:
    with RenderEngine(EngineConfig(pages=1, restart_after=3, policy=NetPolicy())) as engine:
        yield engine


def test_relaunch_after_the_browser_is_killed(private_engine: RenderEngine) -> None:
    before = _browser_pids()
    private_engine.start()
    (pid,) = _browser_pids() - before
    assert private_engine.render(RenderRequest(html="<p>one</p>", size=SIZE)).data
    os.kill(pid, signal.SIGKILL)
    result = private_engine.render(RenderRequest(html="<p>two</p>", size=SIZE))
    assert result.data.startswith(b"\x89PNG")
    assert private_engine.stats.launches == 2
    assert pid not in _browser_pids()


def test_relaunch_after_k_renders(private_engine: RenderEngine) -> None:
    for i in range(7):
        private_engine.render(RenderRequest(html=f"<p>{i}</p>", size=SIZE))
    # restart_after=3: renders 1-3 on the first browser, 4-6 on the second, 7 on the third.
    assert private_engine.stats.launches == 3
    assert private_engine.stats.renders == 7


def test_relaunch_after_timeouts_in_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTERFLOW_TEMPLATE_JAVASCRIPT", "allow")
    config = EngineConfig(pages=1, restart_after_timeouts=2, policy=NetPolicy())
    spin = RenderRequest(html="<script>while (true) {}</script>", size=SIZE, javascript=True, timeout_s=1)
    with RenderEngine(config) as engine:
        results = engine.render_many([spin, spin])
        assert [getattr(r, "code", None) for r in results] == ["timeout", "timeout"]
        assert engine.stats.launches == 1
        assert engine.render(RenderRequest(html="<p>ok</p>", size=SIZE)).data.startswith(b"\x89PNG")
        assert engine.stats.launches == 2
