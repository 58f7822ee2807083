"""render_many: parallel pages, one bad item fails alone, reused pages carry no stale state."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image, ImageChops

from posterflow.net.policy import NetPolicy
from posterflow.posters.templating import render_html
from posterflow.render.engine import EngineConfig, RenderEngine, RenderError, RenderRequest, RenderResult
from posterflow.render.sizes import resolve_size
from tests.e2e.conftest import Servers

pytestmark = pytest.mark.browser

SIZE = resolve_size(width=320, height=200)
TEMPLATE = (
    "<html><body style='margin:0;background:{{ bg }}'>"
    "<h1 style='font-size:40px'>{{ name }}</h1>{% if extra %}<p>{{ extra }}</p>{% endif %}</body></html>"
)


def _item(i: int, **extra: str) -> RenderRequest:
    data = {"name": f"Person {i}", "bg": "#ffd" if i % 2 else "#dff", **extra}
    return RenderRequest(html=render_html(TEMPLATE, data), size=SIZE, request_id=str(i))


def test_one_bad_item_fails_alone(engine: RenderEngine, servers: Servers) -> None:
    items = [_item(i) for i in range(8)]
    bad = RenderRequest(html=f"<img src='{servers.hang.url}/never.png'>", size=SIZE, timeout_s=1.5, request_id="bad")
    results = engine.render_many([*items[:4], bad, *items[4:]])
    assert len(results) == 9
    failed = results[4]
    assert isinstance(failed, RenderError)
    assert failed.code == "timeout"
    assert failed.request_id == "bad"
    good = [r for i, r in enumerate(results) if i != 4]
    assert all(isinstance(r, RenderResult) and r.data.startswith(b"\x89PNG") for r in good)
    assert [r.request_id for r in good if isinstance(r, RenderResult)] == [str(i) for i in range(8)]


def _pixels(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def test_reused_pages_render_exactly_like_fresh_ones(engine: RenderEngine) -> None:
    """Documents are written into already-open pages; the output must not depend on what the
    page showed before (leftover styles, images or text)."""
    batch = [_item(i, extra="x" * (i * 7)) for i in range(12)]
    warm = engine.render_many(batch)
    with RenderEngine(EngineConfig(pages=1, policy=NetPolicy())) as fresh_engine:
        for request, result in zip(batch[-3:], warm[-3:], strict=True):
            assert isinstance(result, RenderResult)
            # A brand-new engine renders this item as its very first document.
            with RenderEngine(EngineConfig(pages=1, policy=NetPolicy())) as cold:
                expected = cold.render(request)
            assert ImageChops.difference(_pixels(result.data), _pixels(expected.data)).getbbox() is None
            again = fresh_engine.render(request)
            assert ImageChops.difference(_pixels(again.data), _pixels(expected.data)).getbbox() is None


def test_pending_meta_refresh_cannot_hijack_a_later_render(engine: RenderEngine, servers: Servers) -> None:
    """A page that scheduled a navigation is not reused: the navigation would fire during
    someone else's render. The attribute is entity-encoded to show the check runs on the DOM."""
    before = len(servers.assets.requests)
    hijack = f"<meta http-equiv='&#82;efresh' content='1;url={servers.assets.url}/hijack'><p>A</p>"
    # render_many: its own render may succeed or, on a slow machine, be cut short by the navigation.
    engine.render_many([RenderRequest(html=hijack, size=SIZE)])
    # Had the page gone back to the pool, its refresh would now fetch /hijack.
    time.sleep(2)
    assert "/hijack" not in servers.assets.requests[before:]
    after = engine.render(_item(1))
    assert after.data.startswith(b"\x89PNG")
