"""A template's page can only read: GET/HEAD with a few harmless headers and no body, and the
asset bucket is served by the engine itself, read-only and only from the tenant's own prefix."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from posterflow import aws
from posterflow.net.policy import AllowRule, AssetBucket, NetPolicy
from posterflow.render import engine as engine_module
from posterflow.render.engine import EngineConfig, RenderEngine, RenderRequest
from posterflow.render.sizes import resolve_size
from tests.e2e.conftest import RED_PNG

pytestmark = pytest.mark.browser

SIZE = resolve_size(width=400, height=300)
BUCKET = "posters-readonly"
ASSETS = ""  # the bucket's asset URL on the local cloud, set by the s3 fixture
OWN = "assets/acme/"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Recorder:
    """A loopback server (allow-listed for the engine below) that records every request,
    whatever its method, so a test sees exactly what left the page."""

    server: ThreadingHTTPServer
    seen: list[Seen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def methods(self) -> set[str]:
        return {s.method for s in self.seen}


def _recorder() -> Recorder:
    holder: dict[str, Recorder] = {}

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            holder["r"].seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
            body = RED_PNG if self.path.endswith(".png") else b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "image/png" if self.path.endswith(".png") else "text/plain")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder["r"] = Recorder(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return holder["r"]


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    rec = _recorder()
    yield rec
    rec.server.shutdown()


@pytest.fixture(scope="module")
def s3(aws_stack: object) -> Iterator[object]:
    """A bucket of the session's local cloud with the tenant's logo and another tenant's secret.
    (Not moto's ``mock_aws``: it resets every backend of the process, the cloud's included.)"""
    global ASSETS
    client = aws.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key=f"{OWN}logo.png", Body=RED_PNG, ContentType="image/png")
    client.put_object(Bucket=BUCKET, Key="assets/other/secret.png", Body=RED_PNG, ContentType="image/png")
    client.put_object(Bucket=BUCKET, Key="assets/logo.png", Body=RED_PNG, ContentType="image/png")
    ASSETS = f"{os.environ['AWS_ENDPOINT_URL'].rstrip('/')}/{BUCKET}/assets"
    yield client


@pytest.fixture(scope="module")
def engine(recorder: Recorder, s3: object) -> Iterator[RenderEngine]:
    policy = NetPolicy([AllowRule.parse(f"{recorder.url}/", allow_private=True)],
                       assets=AssetBucket.for_bucket(BUCKET))
    with RenderEngine(EngineConfig(pages=2, timeout_s=20, policy=policy)) as own:
        yield own


@pytest.fixture
def javascript_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTERFLOW_TEMPLATE_JAVASCRIPT", "allow")


def _render(engine: RenderEngine, body: str, *, javascript: bool = False,
            asset_prefix: str | None = OWN) -> tuple[Image.Image, tuple[str, ...]]:
    html = f"<html><body style='margin:0;background:#fff'>{body}</body></html>"
    result = engine.render(RenderRequest(html=html, size=SIZE, javascript=javascript, timeout_s=15,
                                         asset_prefix=asset_prefix))
    return Image.open(io.BytesIO(result.data)).convert("RGB"), result.blocked_urls


def _red_pixels(image: Image.Image) -> int:
    return sum(1 for r, g, b in image.get_flattened_data() if r > 200 and g < 60 and b < 60)


def _keys(s3: object) -> list[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET)  # type: ignore[attr-defined]
    return sorted(o["Key"] for o in listed.get("Contents", []))


# A synchronous XHR holds the parser (and so the load event) until the route handler answered,
# so the render cannot finish before the request was decided.
def _sync_xhr(method: str, url: str, *, body: str = "null", header: tuple[str, str] | None = None) -> str:
    set_header = f"x.setRequestHeader('{header[0]}', '{header[1]}');" if header else ""
    return (f"try {{ const x = new XMLHttpRequest(); x.open('{method}', '{url}', false); {set_header}"
            f"x.send({body}); }} catch (e) {{}}")


def test_scripts_cannot_write_anything(engine: RenderEngine, recorder: Recorder, javascript_allowed: None) -> None:
    before = len(recorder.seen)
    script = (
        "<script>"
        f"fetch('{recorder.url}/fetch-put', {{method: 'PUT', body: 'overwrite'}}).catch(() => {{}});"
        f"fetch('{recorder.url}/fetch-delete', {{method: 'DELETE'}}).catch(() => {{}});"
        f"navigator.sendBeacon('{recorder.url}/beacon', 'x');"
        + _sync_xhr("PUT", f"{recorder.url}/xhr-put", body="'overwrite'")
        + _sync_xhr("POST", f"{recorder.url}/xhr-post", body="'form=1'")
        + _sync_xhr("GET", f"{recorder.url}/barrier")
        + "</script>"
    )
    _, blocked = _render(engine, script, javascript=True)
    assert recorder.methods() <= {"GET"}, [(s.method, s.path) for s in recorder.seen[before:]]
    text = " ".join(blocked)
    for path, method in [("fetch-put", "PUT"), ("xhr-put", "PUT"), ("xhr-post", "POST"), ("beacon", "POST")]:
        assert f"{recorder.url}/{path}: method {method} is not allowed" in text, blocked


def test_form_post_is_blocked(engine: RenderEngine, recorder: Recorder, javascript_allowed: None) -> None:
    body = (
        f"<form method='post' action='{recorder.url}/form'><input name='a' value='b'></form>"
        "<script>document.forms[0].submit();</script>"
        # Keeps the load event back until the submission's request has been routed.
        "<script>" + _sync_xhr("GET", f"{recorder.url}/barrier") + "</script>"
    )
    _, blocked = _render(engine, body, javascript=True)
    assert all(s.path != "/form" for s in recorder.seen)
    assert any(b.startswith(f"{recorder.url}/form: method POST") for b in blocked), blocked


def test_aws_headers_are_blocked_and_others_are_dropped(
    engine: RenderEngine, recorder: Recorder, javascript_allowed: None
) -> None:
    before = len(recorder.seen)
    script = (
        "<script>"
        + _sync_xhr("GET", f"{recorder.url}/copy", header=("x-amz-copy-source", f"{BUCKET}/assets/other/secret.png"))
        + _sync_xhr("GET", f"{recorder.url}/auth", header=("Authorization", "AWS4-HMAC-SHA256 Credential=x"))
        + _sync_xhr("PUT", f"{ASSETS}/stolen.png", header=("x-amz-copy-source", f"{BUCKET}/assets/other/secret.png"))
        + _sync_xhr("GET", f"{recorder.url}/plain", header=("X-Custom", "1"))
        + "</script>"
    )
    _, blocked = _render(engine, script, javascript=True)
    paths = {s.path: s for s in recorder.seen[before:]}
    assert "/copy" not in paths and "/auth" not in paths
    text = " ".join(blocked)
    assert f"{recorder.url}/copy: header x-amz-copy-source is not allowed" in text, blocked
    assert f"{recorder.url}/auth: header authorization is not allowed" in text, blocked
    assert f"{ASSETS}/stolen.png: method PUT is not allowed" in text, blocked
    # An ordinary read still goes out, without the header the page added.
    assert "/plain" in paths and "x-custom" not in paths["/plain"].headers


def test_own_tenant_asset_loads_from_s3(engine: RenderEngine) -> None:
    # Written as .../assets/logo.png, looked up as assets/acme/logo.png.
    image, blocked = _render(engine, f"<img src='{ASSETS}/logo.png'>")
    assert _red_pixels(image) >= 40 * 40
    assert blocked == ()


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("other/secret.png", None),  # assets/acme/other/secret.png: simply not there (404)
        ("%252e%252e/other/secret.png", "doubly encoded asset path"),
        ("..%2fother/secret.png", "path traversal"),
        ("missing.png", None),
    ],
)
def test_other_tenants_assets_do_not_load(engine: RenderEngine, path: str, reason: str | None) -> None:
    image, blocked = _render(engine, f"<img src='{ASSETS}/{path}'>")
    assert _red_pixels(image) == 0
    if reason:
        assert any(reason in b for b in blocked), blocked
    else:
        assert blocked == ()


def test_asset_urls_need_a_tenant_prefix(engine: RenderEngine) -> None:
    image, blocked = _render(engine, f"<img src='{ASSETS}/logo.png'>", asset_prefix=None)
    assert _red_pixels(image) == 0
    assert blocked and "asset_prefix" in blocked[0]


def test_asset_listing_is_refused(engine: RenderEngine, javascript_allowed: None) -> None:
    body = (
        "<p id='out'>none</p><script>"
        "try { const x = new XMLHttpRequest(); "
        f"x.open('GET', '{ASSETS}/?list-type=2', false); x.send(null); "
        "document.getElementById('out').textContent = x.responseText; } catch (e) {}"
        "</script>"
    )
    _, blocked = _render(engine, body, javascript=True)
    assert any("asset listing is not allowed" in b for b in blocked), blocked


def test_scripts_cannot_put_or_copy_into_the_bucket(engine: RenderEngine, s3: object, javascript_allowed: None) -> None:
    before = _keys(s3)
    script = (
        "<script>"
        f"fetch('{ASSETS}/fetched.png', {{method: 'PUT', body: 'x'}}).catch(() => {{}});"
        + _sync_xhr("PUT", f"{ASSETS}/put.png", body="'x'")
        + _sync_xhr("PUT", f"{ASSETS}/copy.png", header=("x-amz-copy-source", f"{BUCKET}/assets/other/secret.png"))
        + _sync_xhr("DELETE", f"{ASSETS}/logo.png")
        + "</script>"
    )
    _, blocked = _render(engine, script, javascript=True)
    assert _keys(s3) == before
    assert len([b for b in blocked if "is not allowed" in b]) >= 3, blocked


def test_oversized_asset_is_refused(engine: RenderEngine, s3: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "MAX_ASSET_BYTES", len(RED_PNG) - 1)
    image, blocked = _render(engine, f"<img src='{ASSETS}/logo.png'>")
    assert _red_pixels(image) == 0
    assert any("larger than" in b for b in blocked), blocked


def test_javascript_stays_off_unless_the_deployment_allows_it(
    engine: RenderEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = "<script>document.body.style.background = 'rgb(255, 0, 0)';</script>"
    monkeypatch.delenv("POSTERFLOW_TEMPLATE_JAVASCRIPT", raising=False)
    image, _ = _render(engine, body, javascript=True)
    assert _red_pixels(image) == 0
    monkeypatch.setenv("POSTERFLOW_TEMPLATE_JAVASCRIPT", "allow")
    image, _ = _render(engine, body, javascript=True)
    assert _red_pixels(image) == 400 * 300
