"""The posterflow REST API client (synchronous, on httpx)."""

from __future__ import annotations

import builtins
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx

from posterflow_client._version import __version__
from posterflow_client.errors import ApiError, TransportError, UploadFailed, WaitTimeout, error_class
from posterflow_client.models import CancelResult, Job, Poster, RetryResult, Template, WebhookSecret
from posterflow_client.retry import RetryPolicy

IDEMPOTENCY_HEADER = "Idempotency-Key"
API_KEY_HEADER = "x-api-key"
UPLOAD_CHUNK = 1024 * 1024
_FILENAME_BAD = re.compile(r"[^A-Za-z0-9._-]")

ProgressCallback = Callable[[Job], None]


def new_idempotency_key() -> str:
    """A fresh key for one logical call (the client makes one per call unless given one)."""
    return f"pfc-{uuid.uuid4().hex}"


def _path(*parts: str) -> str:
    return "/" + "/".join(quote(p, safe="") for p in parts)


def _options(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _upload_name(path: Path) -> str:
    """A name the API accepts (letters, digits, ``.``, ``_``, ``-``; starts alphanumeric)."""
    name = _FILENAME_BAD.sub("_", path.name).lstrip("._-")[-200:]
    return name or "upload"


def _chunks(file: IO[bytes]) -> Iterator[bytes]:
    while chunk := file.read(UPLOAD_CHUNK):
        yield chunk


def _api_error(response: httpx.Response) -> ApiError:
    status = response.status_code
    code, message, details = f"http_{status}", response.reason_phrase or "error", None
    try:
        body = response.json()
    except ValueError:
        body = None
        text = response.text.strip()
        if text:
            message = text[:500]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or code)
        message = str(error.get("message") or message)
        details = error.get("details")
    request = response.request
    return error_class(status)(status, code, message, details, method=request.method,
                               url=str(request.url.copy_with(query=None)), headers=dict(response.headers))


class Client:
    """A client of one posterflow deployment.

    ``base_url`` is the API's root: the local cloud's ``http://127.0.0.1:8000`` or the API
    Gateway stage URL (``https://<id>.execute-api.<region>.amazonaws.com/prod``); a trailing
    ``/api`` (the seeds' ``FASTAPI_URL``) is accepted too. ``api_key`` is sent as
    ``x-api-key``; the key is also the tenant (templates, jobs and the webhook secret are
    per key). ``timeout`` is per request, in seconds (or an ``httpx.Timeout``).

    Job-creating calls send an ``Idempotency-Key`` (a fresh one per call, or the caller's
    ``idempotency_key=``) and reuse it on their own retries, so a retry after a lost answer
    gets the first job back instead of making a second. ``retry`` sets the retry policy;
    ``transport`` / ``upload_transport`` replace httpx's transports (tests, proxies)."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float | httpx.Timeout = 30.0,
                 upload_timeout: float | httpx.Timeout = 300.0, retry: RetryPolicy | None = None,
                 transport: httpx.BaseTransport | None = None,
                 upload_transport: httpx.BaseTransport | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        root = base_url.rstrip("/")
        if root.endswith("/api"):
            root = root[: -len("/api")]
        sent = {"User-Agent": f"posterflow-client/{__version__}", "Accept": "application/json", **(headers or {})}
        if api_key:
            sent[API_KEY_HEADER] = api_key
        self.base_url = root
        self.retry_policy = retry or RetryPolicy()
        self._http = httpx.Client(base_url=root, headers=sent, timeout=timeout, transport=transport)
        # Presigned PUTs go to S3: a separate client, so the API key is never sent there.
        self._uploads = httpx.Client(timeout=upload_timeout, transport=upload_transport)
        self.templates = Templates(self)
        self._sleep: Callable[[float], None] = time.sleep

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()
        self._uploads.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, url: str, *, safe: bool, http: httpx.Client | None = None,
              open_body: Callable[[], Any] | None = None, **kwargs: Any) -> httpx.Response:
        """One logical request, retried by the policy; returns a 2xx answer or raises."""
        client = http or self._http
        policy = self.retry_policy
        attempt = 0
        while True:
            attempt += 1
            if open_body is not None:
                kwargs["content"] = open_body()
            try:
                response = client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                if attempt < policy.max_attempts and policy.should_retry_error(exc, safe=safe):
                    policy.sleep(policy.delay(attempt, None))
                    continue
                raise TransportError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
            if response.is_success:
                return response
            if attempt < policy.max_attempts and policy.should_retry_status(response, safe=safe):
                policy.sleep(policy.delay(attempt, response))
                continue
            return response

    def _call(self, method: str, path: str, *, safe: bool, json: Any = None, params: Mapping[str, Any] | None = None,
              idempotency_key: str | None = None) -> httpx.Response:
        headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else {}
        kwargs: dict[str, Any] = {"headers": headers}
        if json is not None:
            kwargs["json"] = json
        if params:
            kwargs["params"] = _options(params)
        response = self._send(method, path, safe=safe, **kwargs)
        if not response.is_success:
            raise _api_error(response)
        return response

    def _json(self, method: str, path: str, *, safe: bool, json: Any = None,
              params: Mapping[str, Any] | None = None, idempotency_key: str | None = None) -> dict[str, Any]:
        response = self._call(method, path, safe=safe, json=json, params=params, idempotency_key=idempotency_key)
        body = response.json()
        if not isinstance(body, dict):
            raise ApiError(response.status_code, "unexpected_body", "the API answered something other than an object",
                           method=method, url=path)
        return body

    def _create_job(self, path: str, body: dict[str, Any], idempotency_key: str | None) -> Job:
        key = idempotency_key or new_idempotency_key()
        return Job.model_validate(self._json("POST", path, safe=True, json=body, idempotency_key=key))

    # -- the API ----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._json("GET", "/health", safe=True)

    def generate(self, template_id: str, data: Mapping[str, Any] | None = None, *, format: str | None = None,
                 size: str | None = None, width: int | None = None, height: int | None = None,
                 scale: float | None = None, quality: int | None = None, logo: str | None = None,
                 profile_image: str | None = None, entity_id: str | None = None,
                 metadata: Mapping[str, Any] | None = None, **options: Any) -> Poster:
        """One poster, rendered while the call waits (``POST /api/generate``). No job is made,
        so it is retried like a read: a second render only makes another copy."""
        body = _options({"template_id": template_id, "custom_data": dict(data or {}), "format": format, "size": size,
                         "width": width, "height": height, "scale": scale, "quality": quality, "logo": logo,
                         "profile_image": profile_image, "entity_id": entity_id,
                         "metadata": dict(metadata) if metadata is not None else None, **options})
        return Poster.model_validate(self._json("POST", "/api/generate", safe=True, json=body))

    def generate_async(self, template_id: str, data: Mapping[str, Any] | None = None, *,
                       entity_id: str | None = None, metadata: Mapping[str, Any] | None = None,
                       webhook_url: str | None = None, notify_email: str | None = None,
                       idempotency_key: str | None = None, **options: Any) -> Job:
        """One poster as a job (``POST /api/generate-async``); follow it with :meth:`wait`."""
        body = _options({"template_id": template_id, "custom_data": dict(data or {}), "entity_id": entity_id,
                         "metadata": dict(metadata) if metadata is not None else None, "webhook_url": webhook_url,
                         "notify_email": notify_email, **options})
        return self._create_job("/api/generate-async", body, idempotency_key)

    def generate_batch(self, template_id: str, items: Sequence[Mapping[str, Any]], *, name: str | None = None,
                       metadata: Mapping[str, Any] | None = None, webhook_url: str | None = None,
                       notify_email: str | None = None, idempotency_key: str | None = None,
                       **options: Any) -> Job:
        """1 to 10,000 posters as one job (``POST /api/generate-batch``). An item's
        ``entity_id`` (or its first ``*_id`` field) names its result."""
        body = _options({"template_id": template_id, "items": [dict(i) for i in items], "name": name,
                         "metadata": dict(metadata) if metadata is not None else None, "webhook_url": webhook_url,
                         "notify_email": notify_email, **options})
        return self._create_job("/api/generate-batch", body, idempotency_key)

    def upload_csv(self, path: str | os.PathLike[str], template_id: str, *, filename: str | None = None,
                   name: str | None = None, metadata: Mapping[str, Any] | None = None,
                   webhook_url: str | None = None, notify_email: str | None = None,
                   idempotency_key: str | None = None, **options: Any) -> Job:
        """A CSV of poster rows (header = placeholders) as a job, through ``POST /api/uploads``
        and the presigned PUT it answers; the file is streamed. The job starts when the file
        lands."""
        body = _options({"kind": "poster", "template_id": template_id, "name": name,
                         "metadata": dict(metadata) if metadata is not None else None, "webhook_url": webhook_url,
                         "notify_email": notify_email, **options})
        return self._upload(Path(path), filename, body, idempotency_key)

    def upload_zip(self, path: str | os.PathLike[str], *, filename: str | None = None, name: str | None = None,
                   metadata: Mapping[str, Any] | None = None, webhook_url: str | None = None,
                   notify_email: str | None = None, idempotency_key: str | None = None, **options: Any) -> Job:
        """A ZIP of photos as a face-crop job (``kind: crop``), uploaded as :meth:`upload_csv`."""
        body = _options({"kind": "crop", "name": name, "metadata": dict(metadata) if metadata is not None else None,
                         "webhook_url": webhook_url, "notify_email": notify_email, **options})
        return self._upload(Path(path), filename, body, idempotency_key)

    def _upload(self, path: Path, filename: str | None, body: dict[str, Any], idempotency_key: str | None) -> Job:
        size = path.stat().st_size  # before the job exists: a missing file makes no job
        body["filename"] = filename or _upload_name(path)
        job = self._create_job("/api/uploads", body, idempotency_key)
        if not job.upload_url:
            raise UploadFailed("the API answered no upload_url", job_id=job.job_id)
        headers = {**job.upload_headers, "Content-Length": str(size)}
        files: list[IO[bytes]] = []

        def open_body() -> Iterator[bytes]:
            for f in files:
                f.close()
            files.append(path.open("rb"))
            return _chunks(files[-1])

        try:
            response = self._send(str((job.model_extra or {}).get("method") or "PUT"), job.upload_url, safe=True,
                                  http=self._uploads, open_body=open_body, headers=headers)
        except TransportError as exc:
            raise UploadFailed(f"upload of {path.name} failed: {exc}", job_id=job.job_id) from exc
        finally:
            for f in files:
                f.close()
        if not response.is_success:
            raise UploadFailed(f"upload of {path.name} answered HTTP {response.status_code}: {response.text[:300]}",
                               job_id=job.job_id, status=response.status_code)
        return job

    def job(self, job_id: str | Job, *, page_size: int = 1000) -> Job:
        """The job's status, counters and every result (``next`` cursors are followed)."""
        jid = job_id.job_id if isinstance(job_id, Job) else job_id
        page = self._job_page(jid, limit=page_size)
        results = list(page.results)
        while page.next:
            page = self._job_page(jid, limit=page_size, cursor=page.next)
            results.extend(page.results)
        return page.model_copy(update={"results": results, "next": None})

    def _job_page(self, job_id: str, *, limit: int, cursor: str | None = None) -> Job:
        return Job.model_validate(self._json("GET", _path("api", "jobs", job_id), safe=True,
                                             params={"limit": limit, "cursor": cursor}))

    def iter_jobs(self, status: str | None = None, *, page_size: int = 50) -> Iterator[Job]:
        """The caller's jobs, newest first (without results), page by page."""
        cursor: str | None = None
        while True:
            body = self._json("GET", "/api/jobs", safe=True, params={"status": status, "limit": page_size,
                                                                     "cursor": cursor})
            for job in body.get("jobs", []):
                yield Job.model_validate(job)
            cursor = body.get("next")
            if not cursor:
                return

    def wait(self, job_id: str | Job, timeout: float = 600.0, *, on_progress: ProgressCallback | None = None,
             poll_interval: float = 1.0, max_poll_interval: float = 10.0, backoff: float = 1.5,
             results: bool = True) -> Job:
        """Poll until the job is final (completed, completed_with_errors, failed, cancelled)
        and return it with every result (``results=False``: counters only).

        ``on_progress(job)`` is called with the job's counters (no results) on the first poll
        and on each change of status or counters. The interval starts at ``poll_interval``,
        grows by ``backoff`` while nothing changes (up to ``max_poll_interval``) and starts
        over on a change. Raises :class:`WaitTimeout` (with the last status) after
        ``timeout`` seconds."""
        jid = job_id.job_id if isinstance(job_id, Job) else job_id
        deadline = time.monotonic() + timeout
        interval, seen = poll_interval, None
        while True:
            current = self._job_page(jid, limit=1).model_copy(update={"results": [], "next": None})
            state = (current.status, current.total_items, current.processed_items, current.success_count,
                     current.failure_count, current.skipped_count, current.cancelled_count)
            if state != seen:
                seen, interval = state, poll_interval
                if on_progress is not None:
                    on_progress(current)
            else:
                interval = min(max_poll_interval, interval * backoff)
            if current.is_final:
                return self.job(jid) if results else current
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(jid, timeout, current.status, current)
            self._sleep(min(interval, remaining))

    def cancel(self, job_id: str | Job) -> CancelResult:
        """Cancel the job's pending items (safe to repeat)."""
        jid = job_id.job_id if isinstance(job_id, Job) else job_id
        return CancelResult.model_validate(self._json("POST", _path("api", "jobs", jid, "cancel"), safe=True))

    def retry(self, job_id: str | Job) -> RetryResult:
        """Re-queue the job's failed items (``POST /api/jobs/{id}/retry``)."""
        jid = job_id.job_id if isinstance(job_id, Job) else job_id
        return RetryResult.model_validate(self._json("POST", _path("api", "jobs", jid, "retry"), safe=False))

    def webhook_secret(self) -> WebhookSecret:
        """This API key's webhook signing secret (``.secret``), for :func:`webhooks.verify`."""
        return WebhookSecret.model_validate(self._json("GET", "/api/webhook-secret", safe=True))


class Templates:
    """``client.templates``: versioned HTML templates. Ids: ``<section>`` or
    ``<section>_latest`` (the active version), ``<section>_v<N>``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def upload(self, section: str, name: str, html_content: str, *, set_as_active: bool = True,
               placeholders: Sequence[Mapping[str, Any]] | None = None, width: int | None = None,
               height: int | None = None, size: str | None = None, format: str | None = None,
               javascript: bool | None = None, **extra: Any) -> Template:
        """A new version of ``section`` (``POST /api/templates/upload``). Each call makes a
        version, so it is retried only when the request surely did not arrive."""
        body = _options({"section": section, "name": name, "html_content": html_content,
                         "set_as_active": set_as_active,
                         "placeholders": [dict(p) for p in placeholders] if placeholders is not None else None,
                         "width": width, "height": height, "size": size, "format": format,
                         "javascript": javascript, **extra})
        return Template.model_validate(self._client._json("POST", "/api/templates/upload", safe=False, json=body))

    def update(self, template_id: str, html_content: str, *, set_as_active: bool = True, **fields: Any) -> Template:
        """A new version from ``template_id`` (``PUT``); unset fields keep the current values."""
        body = _options({"html_content": html_content, "set_as_active": set_as_active, **fields})
        return Template.model_validate(self._client._json("PUT", _path("api", "templates", template_id),
                                                          safe=False, json=body))

    def list(self, section: str | None = None) -> builtins.list[Template]:
        body = self._client._json("GET", "/api/templates", safe=True, params={"section": section})
        return [Template.model_validate(t) for t in body.get("templates", [])]

    def get(self, template_id: str) -> Template:
        """One version, with its ``html_content``."""
        return Template.model_validate(self._client._json("GET", _path("api", "templates", template_id), safe=True))

    def activate(self, template_id: str) -> Template:
        return Template.model_validate(self._client._json("POST", _path("api", "templates", template_id, "activate"),
                                                          safe=True))

    def preview(self, template_id: str, *, format: str | None = None) -> bytes:
        """The template rendered with sample values: the image's bytes."""
        response = self._client._call("GET", _path("api", "templates", template_id, "preview"), safe=True,
                                      params={"format": format})
        return response.content
