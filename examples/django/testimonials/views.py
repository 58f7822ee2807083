"""posterflow's completion webhook: verify the signature over the raw body, then record it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from posterflow_client import InvalidPayload, InvalidSignature, webhooks

from testimonials import services


@csrf_exempt  # posterflow signs its POSTs; it has no CSRF token
@require_POST
def posterflow_webhook(request: HttpRequest) -> HttpResponse:
    try:
        payload = webhooks.verify(request.body, request.headers.get(webhooks.SIGNATURE_HEADER),
                                  services.webhook_secret())
    except InvalidSignature as exc:
        # Missing or malformed header: 400; wrong or stale signature: 403. Not retried by posterflow.
        return JsonResponse({"error": str(exc)}, status=400 if exc.reason == "malformed" else 403)
    except InvalidPayload as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    if str(payload.get("event", "")).startswith("job."):
        record = services.record_webhook(payload)
        return JsonResponse({"ok": True, "job_id": record.job_id, "status": record.status})
    return JsonResponse({"ok": True, "ignored": payload.get("event")})
