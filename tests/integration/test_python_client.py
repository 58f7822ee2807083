"""posterflow-client against the local cloud: sync generate, a batch with wait and progress,
uploads, a signed webhook verified with ``webhooks.verify``, a retried POST that gets the same
job, typed errors, templates, and the client's version against the server's OpenAPI."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from posterflow_client import (
    API_VERSION,
    Client,
    Conflict,
    InvalidSignature,
    Job,
    NotFound,
    RetryPolicy,
    ValidationFailed,
    __version__,
    webhooks,
)

from tests.integration.helpers import fetch, wait_for

HTML = "<div style='font:16px sans-serif;background:#234;color:#fff;height:100px'>Hi {{ name }}</div>"
OUT: dict[str, Any] = {"format": "jpeg", "width": 200, "height": 100}
JPEG = b"\xff\xd8\xff"


@pytest.fixture(scope="module")
def api_key() -> str:
    """A tenant of its own: templates, jobs and the webhook secret are per key."""
    return f"pyclient-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def pf(cloud: Any, api_key: str) -> Iterator[Client]:
    with Client(cloud.gateway.rest_url, api_key=api_key, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def template_id(pf: Client) -> str:
    section = f"pyc-{uuid.uuid4().hex[:6]}"
    tv = pf.templates.upload(section, "Client card", HTML, **OUT)
    assert tv.template_id == f"{section}_v1" and tv.is_active
    return f"{section}_latest"


class Receiver:
    """Records every POST on 127.0.0.1 and answers 200."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.posts.append((self.path, dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("POSTERFLOW_WEBHOOK_ALLOW_LOOPBACK", "1")
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_client_version_follows_the_api(pf: Client) -> None:
    spec = httpx.get(f"{pf.base_url}/api/openapi.json", timeout=30).json()
    assert spec["info"]["version"] == API_VERSION
    assert __version__.split(".")[:2] == API_VERSION.split(".")[:2]


def test_generate_is_synchronous_and_typed(pf: Client, template_id: str) -> None:
    poster = pf.generate(template_id, {"name": "Jane"}, **OUT)
    assert poster.template_version_used == 1 and poster.template_id and poster.template_id.endswith("_v1")
    assert poster.generation_time_ms is not None and poster.generation_time_ms > 0
    assert poster.content_type == "image/jpeg" and fetch(poster.url)[:3] == JPEG


def test_batch_wait_with_progress(pf: Client, template_id: str) -> None:
    items = [{"name": f"P{i}", "entity_id": f"e-{i}"} for i in range(12)]
    job = pf.generate_batch(template_id, items, name="client batch", **OUT)
    assert job.job_id and job.total_items == 12 and job.token
    seen: list[Job] = []
    done = pf.wait(job, timeout=120, on_progress=seen.append, poll_interval=0.2)
    assert done.status == "completed" and done.success_count == 12 and done.is_final
    assert seen and seen[-1].status == "completed" and all(j.results == [] for j in seen)
    assert [j.processed_items for j in seen] == sorted(j.processed_items for j in seen)
    assert len(done.results) == 12 and {r.entity_id for r in done.results} == {f"e-{i}" for i in range(12)}
    assert all(r.status == "completed" and r.url for r in done.results)
    assert fetch(done.results[0].url or "")[:3] == JPEG
    # The cursor is followed transparently: pages of 5 give the same 12 results.
    paged = pf.job(job.job_id, page_size=5)
    assert sorted(str(r.item_id) for r in paged.results) == sorted(str(r.item_id) for r in done.results)


def test_generate_async_and_upload_csv(pf: Client, template_id: str, tmp_path: Path) -> None:
    single = pf.generate_async(template_id, {"name": "Solo"}, entity_id="solo", **OUT)
    rows = tmp_path / "rows.csv"
    rows.write_text("name,entity_id\nAnn,a\nBob,b\nCy,c\n", encoding="utf-8")
    uploaded = pf.upload_csv(rows, template_id, **OUT)
    assert uploaded.upload_url and uploaded.upload_headers == {"Content-Type": "text/csv"}
    for job, n in ((single, 1), (uploaded, 3)):
        done = pf.wait(job, timeout=120, poll_interval=0.2)
        assert done.status == "completed" and len(done.urls) == n, done
    assert {r.entity_id for r in pf.job(uploaded).results} == {"a", "b", "c"}


def test_webhook_is_delivered_and_verified(pf: Client, template_id: str, receiver: Receiver) -> None:
    hook = f"/hooks/{uuid.uuid4().hex[:8]}"
    job = pf.generate_batch(template_id, [{"name": "W1"}, {"name": "W2"}], webhook_url=receiver.url + hook, **OUT)
    assert pf.wait(job, timeout=120, poll_interval=0.2).status == "completed"
    ((_path, headers, body),) = wait_for(lambda: [p for p in receiver.posts if p[0] == hook], what="the webhook")
    secret = pf.webhook_secret()
    assert secret.header == webhooks.SIGNATURE_HEADER and secret.secret
    payload = webhooks.verify(body, headers[secret.header], secret.secret)
    assert payload["job_id"] == job.job_id and payload["status"] == "completed"
    assert payload["counts"]["succeeded"] == 2
    with pytest.raises(InvalidSignature) as caught:
        webhooks.verify(body.replace(b'"completed"', b'"failed"', 1), headers[secret.header], secret.secret)
    assert caught.value.reason == "mismatch"
    # Another tenant's secret does not verify this tenant's delivery.
    with Client(pf.base_url, api_key=f"other-{uuid.uuid4().hex[:6]}") as other, pytest.raises(InvalidSignature):
        webhooks.verify(body, headers[secret.header], other.webhook_secret().secret)


class DropFirstAnswer(httpx.BaseTransport):
    """Sends the request for real, then loses the answer of the first POST to ``path`` (as
    a timeout after the server did the work would)."""

    def __init__(self, path: str) -> None:
        self.inner, self.path = httpx.HTTPTransport(), path
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path == self.path:
            self.sent.append(request)
            if len(self.sent) == 1:
                response.read()
                response.close()
                raise httpx.ReadTimeout("answer lost after the request went through", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def _jobs_named(pf: Client, name: str) -> list[str]:
    return [j.job_id for j in pf.iter_jobs(page_size=200) if j.name == name]


def test_retried_post_after_a_lost_answer_returns_the_same_job(cloud: Any, api_key: str, pf: Client,
                                                                template_id: str) -> None:
    transport = DropFirstAnswer("/api/generate-batch")
    name = f"retried-{uuid.uuid4().hex[:8]}"
    policy = RetryPolicy(max_attempts=3, sleep=lambda s: None)
    with Client(cloud.gateway.rest_url, api_key=api_key, retry=policy, transport=transport) as flaky:
        job = flaky.generate_batch(template_id, [{"name": "R1"}, {"name": "R2"}], name=name, **OUT)
    assert len(transport.sent) == 2
    first, second = (r.headers["Idempotency-Key"] for r in transport.sent)
    assert first == second
    assert _jobs_named(pf, name) == [job.job_id]  # the lost answer's job is the one returned
    assert pf.wait(job, timeout=120, poll_interval=0.2).success_count == 2


def test_same_idempotency_key_twice_is_one_job(pf: Client, template_id: str) -> None:
    key, name = f"k-{uuid.uuid4().hex}", f"keyed-{uuid.uuid4().hex[:8]}"
    a = pf.generate_batch(template_id, [{"name": "K"}], name=name, idempotency_key=key, **OUT)
    b = pf.generate_batch(template_id, [{"name": "K"}], name=name, idempotency_key=key, **OUT)
    assert a.job_id == b.job_id and _jobs_named(pf, name) == [a.job_id]
    with pytest.raises(ValidationFailed) as caught:
        pf.generate_batch(template_id, [{"name": "other body"}], name=name, idempotency_key=key, **OUT)
    assert caught.value.status == 422 and caught.value.code == "idempotency_key_reused"
    c = pf.generate_batch(template_id, [{"name": "K"}], name=name, **OUT)  # a new logical call: a new job
    assert c.job_id != a.job_id


def test_typed_404_and_422(pf: Client, template_id: str) -> None:
    with pytest.raises(NotFound) as missing:
        pf.job(f"no-such-job-{uuid.uuid4().hex[:6]}")
    assert missing.value.status == 404 and missing.value.code == "job_not_found" and missing.value.message
    with pytest.raises(NotFound) as no_template:
        pf.generate_batch(f"nope-{uuid.uuid4().hex[:6]}_latest", [{"name": "x"}])
    assert no_template.value.code == "template_not_found"
    with pytest.raises(ValidationFailed) as invalid:
        pf.generate_batch(template_id, [])
    assert invalid.value.status == 422 and invalid.value.code == "validation_error"
    assert any("items" in d["loc"] for d in invalid.value.details)


def test_templates_list_get_activate_preview(pf: Client) -> None:
    section = f"pyt-{uuid.uuid4().hex[:6]}"
    pf.templates.upload(section, "One", HTML, **OUT)
    v2 = pf.templates.update(f"{section}_latest", HTML.replace("Hi", "Hello"))
    assert v2.version == 2 and v2.is_active and v2.width == 200
    assert [t.version for t in sorted(pf.templates.list(section), key=lambda t: t.version)] == [1, 2]
    assert pf.templates.activate(f"{section}_v1").is_active
    current = pf.templates.get(section)
    assert current.version == 1 and current.html_content == HTML
    assert pf.templates.preview(f"{section}_latest")[:3] == JPEG


def test_cancel_and_retry(pf: Client, template_id: str) -> None:
    job = pf.wait(pf.generate_async(template_id, {"name": "Done"}, **OUT), timeout=120, poll_interval=0.2)
    assert pf.retry(job).retried == 0  # nothing failed
    with pytest.raises(Conflict) as finished:
        pf.cancel(job)
    assert finished.value.status == 409 and finished.value.code == "job_state_conflict"
    big = pf.generate_batch(template_id, [{"name": f"C{i}"} for i in range(200)], **OUT)
    cancelled = pf.cancel(big)
    assert cancelled.job_id == big.job_id and cancelled.items_cancelled > 0
    done = pf.wait(big, timeout=120, poll_interval=0.2)
    # Items already with a worker may still finish; every item ends up counted once.
    assert done.status == "cancelled", done
    assert done.cancelled_count >= cancelled.items_cancelled, done
    assert done.success_count + done.failure_count + done.cancelled_count + done.skipped_count == 200, done
