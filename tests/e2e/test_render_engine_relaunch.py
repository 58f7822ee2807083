"""The browser is relaunched after a crash (here: killed) and after ``restart_after`` renders."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from posterflow.render.engine import EngineConfig, RenderEngine, RenderRequest
from posterflow.render.netpolicy import NetPolicy
from posterflow.render.sizes import resolve_size

pytestmark = pytest.mark.browser

SIZE = resolve_size(width=200, height=120)


def _browser_pids() -> set[int]:
    """Chromium main processes (no ``--type=`` switch) descending from this test process."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    mine = {os.getpid()}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                changed = True
    found = set()
    for pid in mine:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        name = Path(argv[0].decode(errors="replace")).name
        if name in ("chromium", "chrome", "headless_shell") and not any(a.startswith(b"--type=") for a in argv):
            found.add(pid)
    return found


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


def test_relaunch_after_timeouts_in_a_row() -> None:
    config = EngineConfig(pages=1, restart_after_timeouts=2, policy=NetPolicy())
    spin = RenderRequest(html="<script>while (true) {}</script>", size=SIZE, javascript=True, timeout_s=1)
    with RenderEngine(config) as engine:
        results = engine.render_many([spin, spin])
        assert [getattr(r, "code", None) for r in results] == ["timeout", "timeout"]
        assert engine.stats.launches == 1
        assert engine.render(RenderRequest(html="<p>ok</p>", size=SIZE)).data.startswith(b"\x89PNG")
        assert engine.stats.launches == 2
