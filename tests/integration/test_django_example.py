"""examples/django against the local cloud: testimonials get posters through posterflow-client
(sync ``generate``, a batch with ``wait``, the management command), and posterflow's completion
webhook reaches the example's view — served by the Django WSGI app on 127.0.0.1 — which verifies
the signature and records the job; a tampered delivery is refused."""

from __future__ import annotations

import io
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
from posterflow_client import Client, webhooks

from posterflow import resources as r
from tests.integration.helpers import fetch, wait_for

EXAMPLE = r.REPO_ROOT / "examples" / "django"
TEMPLATE = ("<div style='font:16px sans-serif;background:#123;color:#fff;height:100px'>"
            "{{ consumer_name }}: {{ consumer_message }} ★{{ rating }}</div>")
JPEG = b"\xff\xd8\xff"


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def django_site(cloud: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Django configured for the example (sqlite in a tmp dir, a tenant of its own), migrated,
    its WSGI app on 127.0.0.1; yields the site's base URL."""
    import django
    from django.conf import settings

    sys.path.insert(0, str(EXAMPLE))
    api_key = f"django-example-{uuid.uuid4().hex[:8]}"
    with Client(cloud.gateway.rest_url, api_key=api_key) as pf:
        pf.templates.upload("testimonial", "Modern Testimonial Design", TEMPLATE, format="jpeg", width=200,
                            height=100)
    if not settings.configured:
        settings.configure(
            DEBUG=False, SECRET_KEY="test", ALLOWED_HOSTS=["127.0.0.1", "localhost"], USE_TZ=True,
            INSTALLED_APPS=["django.contrib.contenttypes", "testimonials"],
            MIDDLEWARE=["django.middleware.common.CommonMiddleware", "django.middleware.csrf.CsrfViewMiddleware"],
            ROOT_URLCONF="posterflow_example.urls", DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3",
                                   "NAME": str(tmp_path_factory.mktemp("django") / "db.sqlite3")}},
            POSTERFLOW_URL=cloud.gateway.rest_url, POSTERFLOW_API_KEY=api_key,
            POSTERFLOW_TEMPLATE_ID="testimonial_latest", POSTERFLOW_WEBHOOK_SECRET=None,
            POSTERFLOW_WEBHOOK_URL=None,
        )
    django.setup()
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    call_command("migrate", verbosity=0)
    server = make_server("127.0.0.1", 0, get_wsgi_application(), server_class=_ThreadingWSGIServer,
                         handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    from testimonials import services

    services.client().close()
    services.client.cache_clear()
    services.webhook_secret.cache_clear()
    sys.path.remove(str(EXAMPLE))


def _testimonials(n: int, tag: str) -> list[Any]:
    from testimonials.models import Testimonial

    return [Testimonial.objects.create(user_id=7, consumer_name=f"{tag} {i}", message=f"Great session #{i}!",
                                       rating="4.5") for i in range(n)]


def test_sync_generate_stores_the_poster(django_site: str) -> None:
    from testimonials import services
    from testimonials.models import PosterStatus, Testimonial

    (t,) = _testimonials(1, "Sync")
    url = services.generate_poster(t)
    t = Testimonial.objects.get(pk=t.pk)
    assert t.poster_url == url and t.poster_status == PosterStatus.COMPLETED and t.poster_generated_at
    assert fetch(url)[:3] == JPEG


def test_batch_with_wait_updates_every_row(django_site: str) -> None:
    from testimonials import services
    from testimonials.models import PosterStatus, Testimonial

    rows = _testimonials(4, "Batch")
    seen: list[str | None] = []
    job = services.generate_posters(rows, wait=True, timeout=120, on_progress=lambda j: seen.append(j.status))
    assert job.status == "completed" and seen[-1] == "completed"
    for t in Testimonial.objects.filter(pk__in=[t.pk for t in rows]):
        assert t.poster_status == PosterStatus.COMPLETED and t.poster_job_id == job.job_id and t.poster_url
    assert fetch(Testimonial.objects.get(pk=rows[0].pk).poster_url)[:3] == JPEG


def test_management_command(django_site: str) -> None:
    from django.core.management import call_command
    from testimonials.models import PosterStatus, Testimonial

    rows = _testimonials(2, "Command")
    out = io.StringIO()
    call_command("generate_posters", "--timeout", "120", stdout=out)
    assert "completed" in out.getvalue()
    assert all(t.poster_status == PosterStatus.COMPLETED
               for t in Testimonial.objects.filter(pk__in=[t.pk for t in rows]))
    assert not Testimonial.objects.exclude(poster_status=PosterStatus.COMPLETED).filter(approved=True).exists()


def test_webhook_is_verified_and_recorded_by_the_view(django_site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from testimonials import services
    from testimonials.models import PosterJob, PosterStatus, Testimonial

    monkeypatch.setenv("POSTERFLOW_WEBHOOK_ALLOW_LOOPBACK", "1")
    rows = _testimonials(3, "Hook")
    job = services.generate_posters(rows, wait=False, webhook_url=f"{django_site}/webhooks/posterflow/")
    assert Testimonial.objects.filter(poster_job_id=job.job_id, poster_status=PosterStatus.PENDING).count() == 3
    # Nothing polls the results into the rows here: only the webhook's view can.
    record = wait_for(lambda: PosterJob.objects.filter(job_id=job.job_id).first(), timeout=120, interval=0.2,
                      what="the webhook to reach the Django view")
    assert record.status == "completed" and record.succeeded == 3 and record.deliveries == 1
    assert "/download?token=" in record.results_url
    for t in Testimonial.objects.filter(pk__in=[t.pk for t in rows]):
        assert t.poster_status == PosterStatus.COMPLETED and t.poster_url, t
    assert fetch(Testimonial.objects.get(pk=rows[0].pk).poster_url)[:3] == JPEG


def test_view_refuses_tampered_unsigned_and_stale_deliveries(django_site: str) -> None:
    from testimonials import services
    from testimonials.models import PosterJob

    url = f"{django_site}/webhooks/posterflow/"
    secret = services.webhook_secret()
    forged = uuid.uuid4().hex.encode()
    body = b'{"event":"job.completed","job_id":"forged-%s","status":"completed","counts":{}}' % forged
    header = webhooks.sign(body, secret)
    tampered = httpx.post(url, content=body.replace(b"completed", b"failed", 1),
                          headers={webhooks.SIGNATURE_HEADER: header, "Content-Type": "application/json"})
    assert tampered.status_code == 403
    assert httpx.post(url, content=body, headers={"Content-Type": "application/json"}).status_code == 400
    stale = webhooks.sign(body, secret, timestamp=1_600_000_000)
    assert httpx.post(url, content=body, headers={webhooks.SIGNATURE_HEADER: stale}).status_code == 403
    wrong = webhooks.sign(body, "not-the-secret")
    assert httpx.post(url, content=body, headers={webhooks.SIGNATURE_HEADER: wrong}).status_code == 403
    assert httpx.get(url).status_code == 405
    assert not PosterJob.objects.filter(job_id__startswith="forged-").exists()


def test_example_layout() -> None:
    """The example stays a runnable project: manage.py, settings, the migration."""
    for rel in ("manage.py", "posterflow_example/settings.py", "testimonials/migrations/0001_initial.py",
                "testimonials/management/commands/generate_posters.py"):
        assert (EXAMPLE / rel).is_file(), rel
    assert "csrf_exempt" in Path(EXAMPLE / "testimonials" / "views.py").read_text()
