"""Posters for testimonials, through posterflow-client.

- :func:`generate_poster`: one poster while the request waits (``POST /api/generate``);
- :func:`generate_posters`: a batch; with ``wait=True`` it polls until the job is final and
  stores the URLs, else posterflow's webhook (:mod:`testimonials.views`) does it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.utils import timezone
from posterflow_client import Client, Job

from testimonials.models import PosterJob, PosterStatus, Testimonial


@lru_cache(maxsize=1)
def client() -> Client:
    """One client per process (it keeps its connections)."""
    return Client(settings.POSTERFLOW_URL, api_key=settings.POSTERFLOW_API_KEY, timeout=60)


@lru_cache(maxsize=1)
def webhook_secret() -> str:
    """The secret webhooks are signed with: the setting, else asked once from the API."""
    configured: str | None = settings.POSTERFLOW_WEBHOOK_SECRET
    return configured or client().webhook_secret().secret


def poster_data(t: Testimonial) -> dict[str, Any]:
    """The template's placeholders, as seed 003 fills them."""
    return {"consumer_name": t.consumer_name, "consumer_message": t.message, "rating": str(t.rating),
            "testimonial_id": str(t.pk)}


def generate_poster(t: Testimonial, **options: Any) -> str:
    """One poster now; stores and returns its URL."""
    poster = client().generate(settings.POSTERFLOW_TEMPLATE_ID, poster_data(t), entity_id=str(t.pk),
                               metadata={"user_id": t.user_id, "testimonial_id": str(t.pk)}, **options)
    t.poster_url, t.poster_status, t.poster_error = poster.url, PosterStatus.COMPLETED, ""
    t.poster_generated_at = timezone.now()
    t.save(update_fields=["poster_url", "poster_status", "poster_error", "poster_generated_at"])
    return poster.url


def generate_posters(testimonials: Iterable[Testimonial], *, wait: bool = True, webhook_url: str | None = None,
                     timeout: float = 600, on_progress: Callable[[Job], None] | None = None,
                     **options: Any) -> Job:
    """A batch for ``testimonials`` (one item each, named by the testimonial's id). Marks them
    pending; with ``wait`` polls until the job is final and applies the results."""
    rows = list(testimonials)
    job = client().generate_batch(settings.POSTERFLOW_TEMPLATE_ID, [poster_data(t) for t in rows],
                                  metadata={"source": "django-example"},
                                  webhook_url=webhook_url or settings.POSTERFLOW_WEBHOOK_URL, **options)
    Testimonial.objects.filter(pk__in=[t.pk for t in rows]).update(
        poster_status=PosterStatus.PENDING, poster_job_id=job.job_id, poster_error="")
    if not wait:
        return job
    done = client().wait(job, timeout=timeout, on_progress=on_progress)
    apply_results(done)
    return done


def apply_results(job: Job) -> int:
    """Store each result's URL (or error) on its testimonial; returns how many were updated."""
    now, updated = timezone.now(), 0
    for result in job.results:
        rows = Testimonial.objects.filter(pk=result.entity_id, poster_job_id=job.job_id)
        if result.url and result.status == "completed":
            updated += rows.update(poster_url=result.url, poster_status=PosterStatus.COMPLETED,
                                   poster_generated_at=now, poster_error="")
        else:
            updated += rows.update(poster_status=PosterStatus.FAILED, poster_error=str(result.error or result.status))
    return updated


def record_webhook(payload: dict[str, Any]) -> PosterJob:
    """What a verified completion webhook does: read the job's results, store them, and
    record the job (deliveries may repeat: this is idempotent)."""
    job_id = str(payload["job_id"])
    counts = payload.get("counts") or {}
    record, _ = PosterJob.objects.get_or_create(job_id=job_id, defaults={"status": str(payload.get("status"))})
    record.status = str(payload.get("status"))
    record.total, record.succeeded = int(counts.get("total") or 0), int(counts.get("succeeded") or 0)
    record.failed, record.results_url = int(counts.get("failed") or 0), str(payload.get("results_url") or "")
    record.webhook_received_at, record.deliveries = timezone.now(), record.deliveries + 1
    record.save()
    apply_results(client().job(job_id))
    return record
