"""One warm render engine per test session, plus tiny local HTTP servers for network tests."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

from posterflow.net.policy import AllowRule, NetPolicy
from posterflow.render.engine import EngineConfig, RenderEngine


def _red_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (255, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


RED_PNG = _red_png()


@dataclass
class LocalServer:
    """A loopback HTTP server that records every request line it receives."""

    server: ThreadingHTTPServer
    requests: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"


def _start(behaviour: str, target: LocalServer | None = None) -> LocalServer:
    holder: dict[str, LocalServer] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            local = holder["server"]
            local.requests.append(self.path)
            if behaviour == "hang":
                local.stop.wait(60)
                return
            if self.path.startswith("/redirect") and target is not None:
                self.send_response(302)
                self.send_header("Location", f"{target.url}/via-redirect")
                self.end_headers()
                return
            body = RED_PNG if self.path.endswith(".png") else b"SECRET-LOCAL-CONTENT"
            self.send_response(200)
            self.send_header("Content-Type", "image/png" if self.path.endswith(".png") else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    local = LocalServer(server)
    holder["server"] = local
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return local


@dataclass
class Servers:
    forbidden: LocalServer
    """Not allow-listed: must never see a request."""
    assets: LocalServer
    """Allow-listed (loopback admitted as the local cloud's bucket is): serves PNGs, redirects."""
    hang: LocalServer
    """Allow-listed; accepts requests and never answers."""


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    forbidden = _start("serve")
    assets = _start("serve", target=forbidden)
    hang = _start("hang")
    yield Servers(forbidden=forbidden, assets=assets, hang=hang)
    for local in (forbidden, assets, hang):
        local.stop.set()
        local.server.shutdown()


@pytest.fixture(scope="session")
def engine(servers: Servers) -> Iterator[RenderEngine]:
    policy = NetPolicy(
        [
            AllowRule.parse(f"{servers.assets.url}/", allow_private=True),
            AllowRule.parse(f"{servers.hang.url}/", allow_private=True),
        ]
    )
    with RenderEngine(EngineConfig(pages=3, timeout_s=20, policy=policy)) as shared:
        shared.start()
        yield shared


# The dashboard and stream tests drive Debian's Chromium through Playwright.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module (Playwright's sync API owns the thread's loop while
    it runs, so a module's browser closes before the next module's opens)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("no system Chromium")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page in its own context; the test fails if the page threw."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert not errors, errors
