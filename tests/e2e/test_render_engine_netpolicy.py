"""Templates cannot reach the metadata service, loopback or local files."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from posterflow.render.engine import RenderEngine, RenderRequest
from posterflow.render.sizes import resolve_size
from tests.e2e.conftest import Servers

pytestmark = pytest.mark.browser

SIZE = resolve_size(width=400, height=300)


def _render(engine: RenderEngine, body: str, *, javascript: bool = False) -> tuple[Image.Image, tuple[str, ...]]:
    html = f"<html><body style='margin:0;background:#fff'>{body}</body></html>"
    result = engine.render(RenderRequest(html=html, size=SIZE, javascript=javascript, timeout_s=15))
    return Image.open(io.BytesIO(result.data)).convert("RGB"), result.blocked_urls


def _blank(image: Image.Image) -> bool:
    return image.getextrema() == ((255, 255), (255, 255), (255, 255))


def _red_pixels(image: Image.Image) -> int:
    return sum(1 for r, g, b in image.get_flattened_data() if r > 200 and g < 60 and b < 60)


def test_allow_listed_image_loads(engine: RenderEngine, servers: Servers) -> None:
    image, blocked = _render(engine, f"<img src='{servers.assets.url}/logo.png'>")
    assert _red_pixels(image) >= 40 * 40
    assert blocked == ()


def test_metadata_service_is_blocked(engine: RenderEngine) -> None:
    body = (
        "<img src='http://169.254.169.254/latest/meta-data/'>"
        "<iframe src='http://169.254.169.254/latest/meta-data/' style='border:0'></iframe>"
        "<div style=\"width:50px;height:50px;background:url('http://169.254.169.254/latest/meta-data/')\"></div>"
    )
    image, blocked = _render(engine, body)
    assert blocked and all(b.startswith("http://169.254.169.254/latest/meta-data/") for b in blocked)
    assert _red_pixels(image) == 0


def test_loopback_server_receives_no_request(engine: RenderEngine, servers: Servers) -> None:
    url = servers.forbidden.url
    body = (
        f"<link rel='stylesheet' href='{url}/style.css'><link rel='preconnect' href='{url}'>"
        f"<img src='{url}/logo.png'><iframe src='{url}/' style='border:0'></iframe>"
        f"<img src='http://localhost:{servers.forbidden.server.server_port}/logo.png'>"
        # An allow-listed server answering with a redirect to the forbidden one.
        f"<img src='{servers.assets.url}/redirect.png'>"
    )
    image, blocked = _render(engine, body)
    assert _red_pixels(image) == 0
    assert any("via-redirect" in b for b in blocked)
    assert servers.forbidden.requests == []


def test_scripts_opted_in_still_cannot_reach_loopback(
    engine: RenderEngine, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTERFLOW_TEMPLATE_JAVASCRIPT", "allow")
    url = servers.forbidden.url
    script = (
        "<p id='out'>none</p><script>"
        f"fetch('{url}/secret').then(r => r.text()).then(t => document.getElementById('out').textContent = t)"
        ".catch(() => {});"
        f"try {{ new WebSocket('ws://127.0.0.1:{servers.forbidden.server.server_port}/'); }} catch (e) {{}}"
        f"navigator.sendBeacon('{url}/beacon', 'x');"
        "</script>"
    )
    _render(engine, script, javascript=True)
    assert servers.forbidden.requests == []


def test_local_files_are_not_readable(engine: RenderEngine) -> None:
    body = (
        "<iframe src='file:///etc/passwd' style='border:0;width:400px;height:150px'></iframe>"
        "<object data='file:///etc/passwd' style='width:400px;height:150px'></object>"
        "<img src='file:///etc/passwd'>"
    )
    image, _ = _render(engine, body)
    # /etc/passwd as text would put dark glyphs on the page; the frames stay empty.
    dark = sum(1 for r, g, b in image.get_flattened_data() if r + g + b < 300)
    assert dark == 0
