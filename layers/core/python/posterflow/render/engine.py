"""HTML → PNG/JPEG/WebP/PDF with one warm headless Chromium per process.

Why it is shaped like this (figures from bench/render.py, in the README's Benchmarks):

- Launching Chromium costs ~0.6 s, so one browser lives as long as the process (a warm Lambda)
  and is relaunched only after a crash or after ``restart_after`` renders, so a long-lived
  renderer does not grow without bound (Gotenberg's restart-after idea).
- Each concurrent render gets a *slot*: its own browser context (cookies, cache and storage
  are not shared between templates) with one page. Slots are kept and reused: the next
  document is written into the already-open page (``document.open/write/close``, which is also
  what Playwright's ``set_content`` does, minus its lifecycle bookkeeping) instead of
  navigating, and resources of the same template come from the memory cache.
- Screenshots go through CDP ``Page.captureScreenshot`` because Playwright's ``screenshot()``
  cannot ask for ``optimizeForSpeed`` (Chromium's PNG encoder at its default level dominates).
- Untrusted templates: JavaScript is off unless the request opts in *and* the deployment allows
  it (``POSTERFLOW_TEMPLATE_JAVASCRIPT``); every request leaving the page goes through
  :class:`~posterflow.net.policy.NetPolicy`; allowed ones are fetched by the Playwright
  driver hop by hop (each redirect re-checked) and handed to the page. The browser itself is
  pointed at a proxy that does not exist and cannot resolve any host name, so anything the
  router does not see (a redirect, preconnect, WebSocket, WebRTC) fails closed.
- A page can only read: GET/HEAD, no body, a short list of harmless headers. The asset bucket's
  ``assets/`` URLs are never forwarded (a forwarded request would carry whatever the page set,
  e.g. an S3 copy); the engine reads the object with its own S3 client from the render's
  ``asset_prefix`` (the tenant's assets) and answers the page itself.
- Engine pages: a slot's key has a kind. ``html`` slots hold templates' documents; another kind
  (``canvas``, :mod:`posterflow.render.canvas`) holds a page of the engine's own, answered with
  its scripts from :data:`INTERNAL_ORIGIN` by the router (to slots of that kind only), with
  JavaScript on for those scripts alone. Every other request of such a page goes through the
  same router and policy. :meth:`AsyncRenderEngine.run_in_slot` gives any kind the pool, the
  timeout and the crash handling.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urljoin

from botocore.exceptions import BotoCoreError, ClientError
from playwright._impl._api_structures import PdfMargins
from playwright.async_api import Browser, BrowserContext, CDPSession, Page, Playwright, Route, async_playwright
from playwright.async_api import Error as PlaywrightError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from posterflow import aws, config
from posterflow.errors import PosterflowError
from posterflow.net.policy import AssetRefused, NetPolicy, asset_key, check_asset_prefix
from posterflow.render.errors import BrowserCrashed as BrowserCrashed
from posterflow.render.errors import ChromiumNotFound as ChromiumNotFound
from posterflow.render.errors import RenderError as RenderError
from posterflow.render.errors import RenderTimeout as RenderTimeout
from posterflow.render.sizes import CONTENT_TYPES, PAPER_MM, OutputFormat, PageSize, inches, resolve_size

logger = logging.getLogger(__name__)

ENV_CHROMIUM = config.CHROMIUM.name
SYSTEM_CHROMIUM = "/usr/bin/chromium"

LAUNCH_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--font-render-hinting=none",
)
# Fail-closed network: Chromium's own network stack can reach nothing; allowed requests are
# fulfilled from the route handler (see module docstring). ``<-loopback>`` removes Chromium's
# implicit proxy bypass for localhost.
ISOLATION_ARGS: tuple[str, ...] = (
    "--proxy-server=http://proxy.invalid:9",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
)

MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

# Reads only. Anything else a page sends (fetch/XHR PUT, form POST, beacons) is refused.
_ALLOWED_METHODS = frozenset({"GET", "HEAD"})
# Headers forwarded with an allowed request; every other header the page or Chromium set is
# dropped. ``origin`` is set by the browser (not the page) and lets CORS-aware CDNs answer font
# requests; ``range`` only narrows a read.
_FORWARDED_HEADERS = frozenset({"accept", "accept-language", "origin", "range", "user-agent"})
# Credentials and AWS request headers (``x-amz-copy-source`` turns a PUT into an S3 copy): a
# page that sets one is not loading a resource, so the request is refused and listed.
_REFUSED_HEADERS = frozenset({"authorization", "proxy-authorization"})
_REFUSED_HEADER_PREFIXES = ("x-amz-",)
MAX_ASSET_BYTES = 20 * 1024 * 1024
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})

# Runs after the load event: every <img> decoded (so the capture never shows a half-decoded
# image) and web fonts loaded. Only promises: with JavaScript disabled, page event listeners
# (e.g. on "load") never fire, but promise reactions still run. Answers whether the document
# scheduled a meta refresh: that navigation would fire later, possibly in the middle of the
# next item's render, so such a page is not reused.
_SETTLE_JS = """async () => {
  await Promise.all(Array.from(document.images, (img) => img.decode().catch(() => null)));
  await document.fonts.ready;
  return document.querySelector('meta[http-equiv="refresh" i]') !== null;
}"""


class RenderRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    html: str
    format: OutputFormat = "png"
    size: PageSize = Field(default_factory=resolve_size)
    quality: int = Field(default=85, ge=1, le=100, description="JPEG/WebP quality")
    javascript: bool = False
    timeout_s: float | None = Field(default=None, gt=0)
    # "fast": Chromium's optimizeForSpeed encoder (≈2x faster, files ≈2-3x bigger);
    # "small": its default zlib level.
    png_compression: Literal["fast", "small"] = "fast"
    request_id: str | None = None
    asset_prefix: str | None = Field(
        default=None,
        description="The tenant's assets, e.g. 'assets/<tenant>/': an asset URL '<bucket>/assets/x.png' "
        "reads '<asset_prefix>x.png'. None: asset URLs are refused.",
    )

    @field_validator("asset_prefix")
    @classmethod
    def _plain_prefix(cls, value: str | None) -> str | None:
        return None if value is None else check_asset_prefix(value)


@dataclass(frozen=True)
class RenderResult:
    data: bytes = field(repr=False)
    format: OutputFormat
    width: int
    height: int
    duration_ms: int
    blocked_urls: tuple[str, ...] = ()
    request_id: str | None = None

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


@dataclass(frozen=True)
class EngineConfig:
    pages: int = 4
    """Renders in flight at once (one page each), and pages kept per kind (html, canvas): a
    batch of canvases after one of HTML posters does not close the HTML pages the next batch needs."""
    restart_after: int = 1000
    """Relaunch the browser after this many renders."""
    restart_after_timeouts: int = 3
    """Relaunch after this many timeouts in a row: the browser itself may be wedged."""
    timeout_s: float = 20.0
    launch_timeout_s: float = 30.0
    executable: str | None = None
    """Chromium binary; default: ``$POSTERFLOW_CHROMIUM``, Playwright's own, ``/usr/bin/chromium``."""
    policy: NetPolicy | None = None
    """Default: :meth:`NetPolicy.from_env` at first launch."""
    extra_args: tuple[str, ...] = ()


@dataclass
class EngineStats:
    launches: int = 0
    renders: int = 0
    failures: int = 0
    timeouts: int = 0
    crashes: int = 0


def find_chromium(playwright: Playwright | None = None) -> str | None:
    """The executable to launch; ``None`` means Playwright's bundled browser."""
    configured = config.chromium()
    if configured:
        if not Path(configured).exists():
            raise ChromiumNotFound(f"{ENV_CHROMIUM}={configured} does not exist")
        return configured
    if playwright is not None:
        try:
            if Path(playwright.chromium.executable_path).exists():
                return None
        except PlaywrightError:
            pass
    system = SYSTEM_CHROMIUM if Path(SYSTEM_CHROMIUM).exists() else shutil.which("chromium")
    if system:
        return system
    raise ChromiumNotFound(f"no Chromium found: set {ENV_CHROMIUM} or install Playwright's browser")


# (device scale, JavaScript, asset prefix, page kind). The asset prefix is part of the key because
# the same asset URL means a different object per tenant: a context (and its memory cache) never
# serves two tenants. The kind is "html" (a template's document) or one registered with
# register_page_kind (the engine's own page, e.g. "canvas": its JavaScript is the engine's, never
# a template's).
SlotKey = tuple[float, bool, str | None, str]
_SlotKey = SlotKey
_T = TypeVar("_T")

INTERNAL_ORIGIN = "https://posterflow.invalid"
"""Where the engine's own pages and scripts are answered from (by the router, never a network)."""


@dataclass(frozen=True)
class InternalFile:
    """One file of an engine page, answered at ``INTERNAL_ORIGIN`` + its path."""

    content_type: str
    body: bytes = field(repr=False)
    headers: Mapping[str, str] = field(default_factory=dict)


_PAGE_KINDS: dict[str, Callable[[], Mapping[str, InternalFile]]] = {}


def register_page_kind(kind: str, files: Callable[[], Mapping[str, InternalFile]]) -> None:
    """Declare a kind of engine page and its files (by URL path, e.g. ``/canvas.html``). Only
    slots of that kind are answered those files; every other request of theirs goes through the
    network policy like a template's."""
    if kind == "html":
        raise ValueError("'html' is the template kind")
    _PAGE_KINDS[kind] = files


@dataclass
class _Slot:
    browser: Browser
    key: _SlotKey
    context: BrowserContext
    page: Page
    cdp: CDPSession
    viewport: tuple[int, int]
    blocked: list[str] = field(default_factory=list)
    used: bool = False
    crashed: bool = False
    tainted: bool = False
    """The document may still navigate (meta refresh) or already did: do not reuse."""
    prepared: bool = False
    """An engine page (kind other than html) has loaded its document and scripts."""


Slot = _Slot


class AsyncRenderEngine:
    """The engine on the caller's event loop. Use :class:`RenderEngine` from synchronous code."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.stats = EngineStats()
        self._policy = self.config.policy
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._since_launch = 0
        self._timeouts_in_row = 0
        self._idle: list[_Slot] = []
        self._slots = 0
        self._kind_slots: dict[str, int] = {}
        self._busy = 0
        self._lock = asyncio.Lock()
        self._idle_cond = asyncio.Condition()
        self._sem = asyncio.Semaphore(self.config.pages)

    # lifecycle ----------------------------------------------------------------------------

    async def start(self, warm_pages: int = 1) -> None:
        """Launch the browser now (otherwise the first render does) and open ``warm_pages``
        pages for the default kind of render (scale 1, no JavaScript). Call it during a
        Lambda's init phase so the first invocation does not pay for either."""
        async with self._lock:
            browser = await self._ensure_browser()
            size = resolve_size()
            while self._slots < min(warm_pages, self.config.pages):
                self._idle.append(await self._new_slot(browser, (size.scale, False, None, "html"), size))

    async def close(self) -> None:
        async with self._lock:
            await self._shutdown_browser()
            if self._playwright is not None:
                await self._playwright.stop()
                self._playwright = None

    @property
    def browser_connected(self) -> bool:
        return self._browser is not None and self._browser.is_connected()

    async def _ensure_browser(self) -> Browser:
        if self._browser is not None and self._browser.is_connected():
            return self._browser
        if self._browser is not None:
            logger.warning("chromium disconnected; relaunching")
            self.stats.crashes += 1
        await self._shutdown_browser()
        if self._playwright is None:
            self._playwright = await async_playwright().start()
        if self._policy is None:
            self._policy = NetPolicy.from_env()
        executable = self.config.executable or find_chromium(self._playwright)
        try:
            self._browser = await self._playwright.chromium.launch(
                executable_path=executable,
                args=[*LAUNCH_ARGS, *ISOLATION_ARGS, *self.config.extra_args],
                timeout=self.config.launch_timeout_s * 1000,
                handle_sigint=False,
                handle_sigterm=False,
                handle_sighup=False,
            )
        except PlaywrightError as exc:
            raise ChromiumNotFound(f"cannot launch Chromium ({executable or 'bundled'}): {exc.message}") from exc
        self._since_launch = 0
        self.stats.launches += 1
        return self._browser

    async def _shutdown_browser(self) -> None:
        idle, self._idle = self._idle, []
        self._slots -= len(idle)
        for slot in idle:
            self._kind_slots[slot.key[3]] -= 1
        browser, self._browser = self._browser, None
        if browser is not None:
            try:
                await asyncio.wait_for(browser.close(), 10)
            except (PlaywrightError, TimeoutError):
                logger.warning("closing chromium failed", exc_info=True)

    # slots --------------------------------------------------------------------------------

    async def _acquire(self, key: _SlotKey, size: PageSize) -> _Slot:
        await self._sem.acquire()
        try:
            async with self._lock:
                if self._since_launch >= self.config.restart_after and self.browser_connected:
                    # Drain: let in-flight renders finish, then relaunch with a fresh process.
                    async with self._idle_cond:
                        await self._idle_cond.wait_for(lambda: self._busy == 0)
                    logger.info("relaunching chromium after %d renders", self._since_launch)
                    await self._shutdown_browser()
                browser = await self._ensure_browser()
                slot = self._take_idle(key)
                if slot is None and self._idle:
                    # At most `pages` pages of a kind (the least recently used idle one of the
                    # kind goes), and `pages` per kind in all.
                    kind = key[3]
                    same = [i for i, idle in enumerate(self._idle) if idle.key[3] == kind]
                    if same and self._kind_slots.get(kind, 0) >= self.config.pages:
                        await self._discard(self._idle.pop(same[0]))
                    elif self._slots >= self.config.pages * (1 + len(_PAGE_KINDS)):
                        await self._discard(self._idle.pop(0))
                if slot is None:
                    try:
                        slot = await self._new_slot(browser, key, size)
                    except PlaywrightError:
                        # The browser died under us (killed, out of memory) before Playwright
                        # noticed the disconnect: start a new one, once.
                        logger.warning("chromium is unusable; relaunching", exc_info=True)
                        self.stats.crashes += 1
                        await self._shutdown_browser()
                        slot = await self._new_slot(await self._ensure_browser(), key, size)
                self._busy += 1
                return slot
        except BaseException:
            self._sem.release()
            raise

    def _take_idle(self, key: _SlotKey) -> _Slot | None:
        for i, slot in enumerate(self._idle):
            if slot.key == key:
                return self._idle.pop(i)
        # A page that never rendered has nothing cached for anyone: it may take any tenant
        # (so the warm pages opened by start() serve the first renders of every tenant).
        for i, slot in enumerate(self._idle):
            if not slot.used and (slot.key[0], slot.key[1], slot.key[3]) == (key[0], key[1], key[3]):
                slot.key = key
                return self._idle.pop(i)
        return None

    async def _release(self, slot: _Slot, *, healthy: bool) -> None:
        reusable = not slot.crashed and not slot.tainted and slot.browser is self._browser
        if healthy and reusable and self.browser_connected:
            self._idle.append(slot)
        else:
            await self._discard(slot)
        async with self._idle_cond:
            self._busy -= 1
            self._idle_cond.notify_all()
        self._sem.release()

    async def _discard(self, slot: _Slot) -> None:
        self._slots -= 1
        self._kind_slots[slot.key[3]] -= 1
        try:
            await asyncio.wait_for(slot.context.close(), 5)
        except (PlaywrightError, TimeoutError):
            logger.debug("closing a render context failed", exc_info=True)

    async def _new_slot(self, browser: Browser, key: _SlotKey, size: PageSize) -> _Slot:
        scale, javascript, _, _ = key
        context = await browser.new_context(
            viewport={"width": size.width, "height": size.height},
            device_scale_factor=scale,
            java_script_enabled=javascript,
            service_workers="block",
            accept_downloads=False,
        )
        try:
            page = await context.new_page()
            cdp = await context.new_cdp_session(page)
        except BaseException:
            with contextlib.suppress(PlaywrightError):
                await context.close()
            raise
        self._slots += 1
        self._kind_slots[key[3]] = self._kind_slots.get(key[3], 0) + 1
        slot = _Slot(browser=browser, key=key, context=context, page=page, cdp=cdp, viewport=(size.width, size.height))

        def on_crash(_: Page) -> None:
            slot.crashed = True

        page.on("crash", on_crash)

        async def route(route: Route) -> None:
            await self._route(route, slot)

        await context.route("**/*", route)
        return slot

    # network ------------------------------------------------------------------------------

    async def _route(self, route: Route, slot: _Slot) -> None:
        """Serve asset URLs from S3; fetch other allowed reads hop by hop so every redirect
        target is checked too."""
        assert self._policy is not None
        request = route.request
        url = request.url
        # Read now: the slot's key does not change while it renders, but be explicit about
        # which tenant this request is answered for.
        asset_prefix = slot.key[2]
        try:
            if url.startswith(INTERNAL_ORIGIN + "/"):
                await self._serve_internal(route, slot, url)
                return
            refusal = _refusal(request.method, request.headers, request.post_data_buffer)
            if refusal is not None:
                await self._block(route, slot, url, refusal)
                return
            headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARDED_HEADERS}
            for _ in range(MAX_REDIRECTS + 1):
                relative = self._policy.asset_path(url)
                if relative is not None:
                    await self._serve_asset(route, slot, url, relative, asset_prefix, head=request.method == "HEAD")
                    return
                decision = await self._policy.check(url)
                if not decision.allowed:
                    await self._block(route, slot, url, decision.reason)
                    return
                response = await route.fetch(url=url, method=request.method, headers=headers, max_redirects=0)
                location = response.headers.get("location")
                if response.status in _REDIRECT_STATUSES and location:
                    url = urljoin(url, location)
                    continue
                await route.fulfill(response=response)
                return
            await self._block(route, slot, url, f"more than {MAX_REDIRECTS} redirects")
        except PlaywrightError as exc:
            # The fetch failed, or the page went away (a timed-out render closes its context).
            logger.debug("template request %s failed: %s", url, exc.message)
            with contextlib.suppress(PlaywrightError):
                await route.abort("failed")

    async def _serve_internal(self, route: Route, slot: _Slot, url: str) -> None:
        """The engine's own files, to pages of their kind only (a template never gets them)."""
        files = _PAGE_KINDS.get(slot.key[3])
        path = url[len(INTERNAL_ORIGIN) :].split("?", 1)[0]
        found = files().get(path) if files is not None and route.request.method == "GET" else None
        if found is None:
            await self._block(route, slot, url, "not an engine file for this page")
            return
        headers = {"content-type": found.content_type, "cache-control": "max-age=31536000", **found.headers}
        await route.fulfill(status=200, headers=headers, body=found.body)

    @staticmethod
    async def _block(route: Route, slot: _Slot, url: str, reason: str) -> None:
        slot.blocked.append(f"{url}: {reason}")
        logger.info("blocked template request %s: %s", url, reason)
        await route.abort("blockedbyclient")

    async def _serve_asset(
        self, route: Route, slot: _Slot, url: str, relative: str, asset_prefix: str | None, *, head: bool
    ) -> None:
        """Answer an asset URL from the tenant's prefix of the bucket, read-only."""
        assert self._policy is not None and self._policy.assets is not None
        try:
            key = asset_key(asset_prefix, relative)
        except AssetRefused as exc:
            await self._block(route, slot, url, str(exc))
            return
        bucket = self._policy.assets.bucket
        try:
            # boto3 blocks: off the event loop, which also serves the other pages' requests.
            asset = await asyncio.to_thread(_read_asset, bucket, key, head=head)
        except (ClientError, BotoCoreError) as exc:
            logger.warning("reading asset s3://%s/%s for %s failed: %s", bucket, key, url, exc)
            await route.abort("failed")
            return
        if asset is None:
            logger.info("template asset %s (s3://%s/%s) does not exist", url, bucket, key)
            await route.fulfill(status=404, headers={"content-type": "text/plain"}, body=b"not found")
            return
        if isinstance(asset, int):
            await self._block(route, slot, url, f"asset is larger than {MAX_ASSET_BYTES} bytes ({asset})")
            return
        content_type, body = asset
        # "*": fonts and fetch() from the page's opaque origin are CORS requests; the bytes are
        # the tenant's own and go nowhere but this render.
        headers = {"content-type": content_type, "access-control-allow-origin": "*"}
        await route.fulfill(status=200, headers=headers, body=body)

    # rendering ----------------------------------------------------------------------------

    async def render(self, request: RenderRequest) -> RenderResult:
        """Render one document. Raises :class:`RenderError` (or a subclass) with the reason.

        A render hit by a browser or page crash is retried once on a fresh slot."""
        for attempt in range(2):
            try:
                return await self._render_once(request)
            except BrowserCrashed:
                if attempt == 1:
                    raise
                logger.warning("render %s hit a crash; retrying once", request.request_id)
        raise AssertionError("unreachable")

    async def _render_once(self, request: RenderRequest) -> RenderResult:
        started = time.perf_counter()
        if request.javascript and not config.template_javascript_allowed():
            # Defence in depth: a template stored with JavaScript on (an old version, or one
            # written while the deployment allowed it) renders with it off.
            logger.info("render %s: JavaScript is disabled for this deployment", request.request_id)
            request = request.model_copy(update={"javascript": False})
        key: SlotKey = (request.size.scale, request.javascript, request.asset_prefix, "html")

        async def work(slot: _Slot) -> bytes:
            return await self._render_on(slot, request)

        data, blocked = await self.run_in_slot(
            key, request.size, work, timeout_s=request.timeout_s, request_id=request.request_id
        )
        width, height = (request.size.pixel_width, request.size.pixel_height)
        return RenderResult(
            data=data,
            format=request.format,
            width=width,
            height=height,
            duration_ms=round((time.perf_counter() - started) * 1000),
            blocked_urls=blocked,
            request_id=request.request_id,
        )

    async def run_in_slot(
        self,
        key: SlotKey,
        size: PageSize,
        work: Callable[[_Slot], Awaitable[_T]],
        *,
        timeout_s: float | None,
        request_id: str | None,
    ) -> tuple[_T, tuple[str, ...]]:
        """Run ``work`` on a pooled page of ``key`` within the timeout, with the engine's crash,
        timeout and relaunch handling; answers its result and the URLs the router refused.
        A :class:`~posterflow.errors.PosterflowError` raised by ``work`` is the item's fault:
        it propagates and the page goes back to the pool."""
        timeout = timeout_s or self.config.timeout_s
        try:
            slot = await self._acquire(key, size)
        except PlaywrightError as exc:
            raise BrowserCrashed(f"no usable browser page: {exc.message}", request_id=request_id) from exc
        healthy = False
        try:
            data = await asyncio.wait_for(work(slot), timeout)
            # Read before the slot goes back to the pool, where the next render clears it.
            blocked = tuple(slot.blocked)
            healthy = True
        except TimeoutError:
            self.stats.timeouts += 1
            self.stats.failures += 1
            self._timeouts_in_row += 1
            if self._timeouts_in_row >= self.config.restart_after_timeouts:
                logger.warning("%d renders in a row timed out; relaunching chromium", self._timeouts_in_row)
                self._timeouts_in_row = 0
                self._since_launch = self.config.restart_after  # drain and relaunch at the next acquire
            raise RenderTimeout(
                f"render did not finish within {timeout:g}s (a resource never loaded or a script never ended)",
                request_id=request_id,
            ) from None
        except PlaywrightError as exc:
            self.stats.failures += 1
            message = exc.message.lower()
            if slot.crashed or not self.browser_connected or "crash" in message or "closed" in message:
                self.stats.crashes += 1
                raise BrowserCrashed(f"chromium crashed while rendering: {exc.message}", request_id=request_id) from exc
            raise RenderError(f"render failed: {exc.message}", request_id=request_id) from exc
        except PosterflowError:
            # The page answered that the item is bad (e.g. a canvas text overflow): it is fine.
            self.stats.failures += 1
            healthy = True
            raise
        finally:
            await self._release(slot, healthy=healthy)
        self.stats.renders += 1
        self._since_launch += 1
        self._timeouts_in_row = 0
        return data, blocked

    async def _render_on(self, slot: _Slot, request: RenderRequest) -> bytes:
        slot.blocked.clear()
        size = request.size
        page = slot.page
        if slot.viewport != (size.width, size.height):
            await page.set_viewport_size({"width": size.width, "height": size.height})
            slot.viewport = (size.width, size.height)
        if request.javascript and slot.used:
            # A fresh Window, so timers and globals of the previous document cannot leak over.
            await page.goto("about:blank")
        slot.used = True
        # set_content writes into the open document (document.open/write/close) rather than
        # navigating, and waits for the load event from the browser side, which also works when
        # the page's JavaScript is disabled.
        await page.set_content(request.html, wait_until="load", timeout=0)
        refresh = await page.evaluate(_SETTLE_JS)
        # Popups (window.open with JavaScript on) would live on in a reused context.
        slot.tainted = bool(refresh) or page.url != "about:blank" or len(slot.context.pages) > 1
        if request.format == "pdf":
            return await self._pdf(page, size)
        # The clip's scale carries the device scale factor: this CDP session does not see the
        # context's device-metrics emulation, and without it the capture comes out at 1x.
        clip = {"x": 0, "y": 0, "width": size.width, "height": size.height, "scale": size.scale}
        params: dict[str, Any] = {
            "format": request.format,
            "clip": clip,
            "captureBeyondViewport": False,
            "fromSurface": True,
        }
        if request.format == "png":
            params["optimizeForSpeed"] = request.png_compression == "fast"
        else:
            params["quality"] = request.quality
        shot = await slot.cdp.send("Page.captureScreenshot", params)
        return base64.b64decode(shot["data"])

    @staticmethod
    async def _pdf(page: Page, size: PageSize) -> bytes:
        margin: PdfMargins = {"top": "0", "right": "0", "bottom": "0", "left": "0"}
        if size.pdf_format:
            return await page.pdf(format=size.pdf_format, print_background=True, margin=margin)
        if size.preset in PAPER_MM:
            # Inches: Playwright's "mm" goes through a rounded factor and lands up to 1pt off.
            width_mm, height_mm = PAPER_MM[size.preset]
            return await page.pdf(
                width=inches(width_mm), height=inches(height_mm), print_background=True, margin=margin
            )
        return await page.pdf(width=f"{size.width}px", height=f"{size.height}px", print_background=True, margin=margin)

    async def render_many(self, requests: Sequence[RenderRequest]) -> list[RenderResult | RenderError]:
        """Render in parallel (up to ``config.pages`` at once); a failed item is returned as its
        :class:`RenderError` and does not affect the others."""

        async def one(request: RenderRequest) -> RenderResult | RenderError:
            try:
                return await self.render(request)
            except RenderError as exc:
                return exc
            except Exception as exc:  # one bad item must never take the batch down
                logger.exception("render %s failed unexpectedly", request.request_id)
                return RenderError(f"{type(exc).__name__}: {exc}", request_id=request.request_id)

        return list(await asyncio.gather(*(one(r) for r in requests)))


class RenderEngine:
    """Synchronous facade for Lambda handlers: the async engine runs on a private event-loop
    thread that lives as long as the process, so the browser stays warm between invocations."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="posterflow-render", daemon=True)
        self._thread.start()
        self._engine = AsyncRenderEngine(config)
        self._closed = False

    @property
    def config(self) -> EngineConfig:
        return self._engine.config

    @property
    def stats(self) -> EngineStats:
        return self._engine.stats

    def _call(self, coro: Any) -> Any:
        if self._closed:
            raise RenderError("render engine is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def start(self, warm_pages: int = 1) -> None:
        self._call(self._engine.start(warm_pages))

    def render(self, request: RenderRequest) -> RenderResult:
        result: RenderResult = self._call(self._engine.render(request))
        return result

    def render_many(self, requests: Sequence[RenderRequest]) -> list[RenderResult | RenderError]:
        results: list[RenderResult | RenderError] = self._call(self._engine.render_many(requests))
        return results

    @property
    def async_engine(self) -> AsyncRenderEngine:
        """The engine on its private loop (for :meth:`call`)."""
        return self._engine

    def call(self, coro: Awaitable[_T]) -> _T:
        """Run a coroutine of :attr:`async_engine` on the engine's loop and wait for it."""
        result: _T = self._call(coro)
        return result

    def close(self) -> None:
        if self._closed:
            return
        try:
            self._call(self._engine.close())
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> RenderEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_engine: RenderEngine | None = None
_engine_lock = threading.Lock()


def get_engine(config: EngineConfig | None = None) -> RenderEngine:
    """The process-wide engine (created on first use; ``config`` only matters then)."""
    global _engine
    with _engine_lock:
        if _engine is None or _engine._closed:
            _engine = RenderEngine(config)
        return _engine


def shutdown_engine() -> None:
    global _engine
    with _engine_lock:
        if _engine is not None:
            _engine.close()
            _engine = None


def _refusal(method: str, headers: dict[str, str], body: bytes | None) -> str | None:
    """Why a page's request is refused before any URL check, or ``None`` for a plain read."""
    if method.upper() not in _ALLOWED_METHODS:
        return f"method {method.upper()} is not allowed"
    for name in headers:
        lower = name.lower()
        if lower in _REFUSED_HEADERS or lower.startswith(_REFUSED_HEADER_PREFIXES):
            return f"header {lower} is not allowed"
    if body:
        return "a request body is not allowed"
    return None


def _read_asset(bucket: str, key: str, *, head: bool) -> tuple[str, bytes] | int | None:
    """``(content type, bytes)``; ``None`` when missing; the size when over :data:`MAX_ASSET_BYTES`.
    Runs in a worker thread (boto3 is synchronous)."""
    s3 = aws.client("s3")
    try:
        obj = s3.head_object(Bucket=bucket, Key=key) if head else s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING_KEY_CODES:
            return None
        raise
    size = int(obj.get("ContentLength") or 0)
    content_type = str(obj.get("ContentType") or "application/octet-stream")
    if size > MAX_ASSET_BYTES:
        if not head:
            obj["Body"].close()
        return size
    if head:
        return content_type, b""
    with contextlib.closing(obj["Body"]) as stream:
        # ContentLength is the object's; read one byte more than allowed in case it lies.
        data: bytes = stream.read(MAX_ASSET_BYTES + 1)
    if len(data) > MAX_ASSET_BYTES:
        return len(data)
    return content_type, data
