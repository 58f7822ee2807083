"""The posterflow REST API client (synchronous, on httpx)."""

from __future__ import annotations

import builtins
import datetime as dt
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import quote

import httpx

from posterflow_client._version import __version__
from posterflow_client.errors import (
    ApiError,
    TransportError,
    UploadFailed,
    WaitTimeout,
    ZipTooLarge,
    error_class,
)
from posterflow_client.models import (
    BatchStatus,
    CancelResult,
    CropStats,
    Job,
    JobResult,
    LogLine,
    Poster,
    RetryResult,
    StreamEvent,
    Template,
    TemplateStats,
    VariableMapping,
    WebhookSecret,
    ZipUpload,
)
from posterflow_client.retry import RetryPolicy
from posterflow_client.sse import EventParser

IDEMPOTENCY_HEADER = "Idempotency-Key"
API_KEY_HEADER = "x-api-key"
UPLOAD_CHUNK = 1024 * 1024
UPLOAD_ZIP_MAX_BYTES = 4 * 1024 * 1024
"""The server's default ``POSTERFLOW_UPLOAD_ZIP_MAX_BYTES``: the largest form
``POST /api/batch/upload-zip`` takes (bigger ZIPs go through ``POST /api/uploads``)."""
UPLOAD_ZIP_ROUTE = "/api/batch/upload-zip"
STREAM_CONTROL_EVENTS = frozenset({"heartbeat", "reconnect"})
BatchMode = Literal["async", "sync", "auto"]
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


def _job_id(job: str | Job) -> str:
    return job.job_id if isinstance(job, Job) else job


def _day(value: str | dt.date | None) -> str | None:
    """A stats bound: ``YYYY-MM-DD`` (a ``date`` or ``datetime`` gives its day; a datetime
    with a time zone is taken in UTC first, as the server counts UTC days)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


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
        self.api_key = api_key
        self.retry_policy = retry or RetryPolicy()
        self._http = httpx.Client(base_url=root, headers=sent, timeout=timeout, transport=transport)
        # Presigned PUTs go to S3: a separate client, so the API key is never sent there.
        self._uploads = httpx.Client(timeout=upload_timeout, transport=upload_transport)
        self.templates = Templates(self)
        self.jobs = Jobs(self)
        self.batch = Batch(self)
        self.stats = Stats(self)
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

    def _raise(self, response: httpx.Response) -> None:
        if not response.is_success:
            raise _api_error(response)

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
                       priority: int | None = None, idempotency_key: str | None = None, **options: Any) -> Job:
        """One poster as a job (``POST /api/generate-async``); follow it with :meth:`wait`.
        ``priority``: 1 (most urgent) to 10; 1-3 run in the urgent lane."""
        body = _options({"template_id": template_id, "custom_data": dict(data or {}), "entity_id": entity_id,
                         "metadata": dict(metadata) if metadata is not None else None, "webhook_url": webhook_url,
                         "notify_email": notify_email, "priority": priority, **options})
        return self._create_job("/api/generate-async", body, idempotency_key)

    def generate_batch(self, template_id: str, items: Sequence[Mapping[str, Any]], *, name: str | None = None,
                       metadata: Mapping[str, Any] | None = None, webhook_url: str | None = None,
                       notify_email: str | None = None, priority: int | None = None,
                       mode: BatchMode | None = None, merge_pdf: bool | None = None,
                       idempotency_key: str | None = None, **options: Any) -> Job:
        """1 to 10,000 posters as one job (``POST /api/generate-batch``). An item's
        ``entity_id`` (or its first ``*_id`` field) names its result.

        ``mode``: ``async`` (the server's default) queues the items; ``auto`` renders a small
        batch (up to the server's ``POSTERFLOW_SYNC_BATCH_MAX``, 25) while the call waits and a
        larger one async; ``sync`` renders inline or refuses (422 ``sync_batch_too_large``). A
        batch answered inline comes back with every result (``job.inline`` True,
        ``job.is_rendered``): no polling needed, and :meth:`wait` returns it as it is once it is
        final. One that did not finish inline in time comes back as an async job
        (``inline`` False, ``queued``). ``merge_pdf=True`` (PDF output only: 422
        ``merge_pdf_needs_pdf``) adds one merged PDF: ``merged_pdf_url`` / ``merged_pdf_urls``
        on the finished job."""
        body = _options({"template_id": template_id, "items": [dict(i) for i in items], "name": name,
                         "metadata": dict(metadata) if metadata is not None else None, "webhook_url": webhook_url,
                         "notify_email": notify_email, "priority": priority, "mode": mode, "merge_pdf": merge_pdf,
                         **options})
        job = self._create_job("/api/generate-batch", body, idempotency_key)
        if job.inline and job.next:
            # An inline answer carries up to 1,000 results; the rest (never with the default
            # limits) is read as the job's pages.
            results = list(job.results)
            cursor: str | None = job.next
            while cursor:
                page = self._job_page(job.job_id, limit=1000, cursor=cursor)
                results.extend(page.results)
                cursor = page.next
            job = job.model_copy(update={"results": results, "next": None})
        return job

    def generate_bulk(self, *, csv_data: str | Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]] | None = None,
                      user_identifiers: str | Sequence[str] | None = None, template_id: str | None = None,
                      template_html: str | None = None, csv_columns: Sequence[str] | None = None,
                      name: str | None = None, metadata: Mapping[str, Any] | None = None,
                      webhook_url: str | None = None, notify_email: str | None = None, priority: int | None = None,
                      merge_pdf: bool | None = None, idempotency_key: str | None = None, **options: Any) -> Job:
        """Seed 000's bulk generation (``POST /api/generate-bulk``) as one job: CSV rows
        (``csv_data``: CSV text, a list of objects, or a list of lists with the header first;
        ``csv_columns``: only those columns fill placeholders) or user profiles looked up at the
        server's profile source (``user_identifiers``). The template is ``template_id`` or inline
        HTML (``template_html``, stored once per distinct content). Bad rows are failed items
        with their reasons (``failed_items`` in the answer), never dropped."""
        if (csv_data is None) == (user_identifiers is None):
            raise ValueError("give exactly one of csv_data and user_identifiers")
        method = "csv" if csv_data is not None else "html"
        rows: Any = csv_data if isinstance(csv_data, str) or csv_data is None else [
            dict(r) if isinstance(r, Mapping) else list(r) for r in csv_data]
        body = _options({"bulkMethod": method, "template_id": template_id, "csvData": rows,
                         "csvTemplate" if method == "csv" else "htmlTemplate": template_html,
                         "csvColumns": list(csv_columns) if csv_columns is not None else None,
                         "userIdentifiers": user_identifiers if isinstance(user_identifiers, str | None)
                         else list(user_identifiers), "name": name,
                         "metadata": dict(metadata) if metadata is not None else None, "webhook_url": webhook_url,
                         "notify_email": notify_email, "priority": priority, "merge_pdf": merge_pdf, **options})
        return self._create_job("/api/generate-bulk", body, idempotency_key)

    def upload_csv(self, path: str | os.PathLike[str], template_id: str, *, filename: str | None = None,
                   name: str | None = None, metadata: Mapping[str, Any] | None = None,
                   webhook_url: str | None = None, notify_email: str | None = None, priority: int | None = None,
                   idempotency_key: str | None = None, **options: Any) -> Job:
        """A CSV of poster rows (header = placeholders) as a job, through ``POST /api/uploads``
        and the presigned PUT it answers; the file is streamed. The job starts when the file
        lands."""
        body = _options({"kind": "poster", "template_id": template_id, "name": name,
                         "metadata": dict(metadata) if metadata is not None else None, "webhook_url": webhook_url,
                         "notify_email": notify_email, "priority": priority, **options})
        return self._upload(Path(path), filename, body, idempotency_key)

    def upload_zip(self, path: str | os.PathLike[str], *, filename: str | None = None, name: str | None = None,
                   metadata: Mapping[str, Any] | None = None, webhook_url: str | None = None,
                   notify_email: str | None = None, priority: int | None = None,
                   idempotency_key: str | None = None, **options: Any) -> Job:
        """A ZIP of photos as a face-crop job (``kind: crop``), uploaded as :meth:`upload_csv`
        (any size up to S3's 5 GB; :meth:`Batch.upload_zip` posts small ones in one request)."""
        body = _options({"kind": "crop", "name": name, "metadata": dict(metadata) if metadata is not None else None,
                         "webhook_url": webhook_url, "notify_email": notify_email, "priority": priority,
                         **options})
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

    def job(self, job_id: str | Job, *, page_size: int = 1000, status: str | None = None) -> Job:
        """The job's status, counters and every result (``next`` cursors are followed);
        ``status`` (``failed``, ``succeeded``, ``skipped``, ``cancelled``, ``pending``) keeps
        only those results."""
        jid = _job_id(job_id)
        page = self._job_page(jid, limit=page_size, status=status)
        results = list(page.results)
        while page.next:
            page = self._job_page(jid, limit=page_size, cursor=page.next, status=status)
            results.extend(page.results)
        return page.model_copy(update={"results": results, "next": None})

    def _job_page(self, job_id: str, *, limit: int, cursor: str | None = None, status: str | None = None) -> Job:
        return Job.model_validate(self._json("GET", _path("api", "jobs", job_id), safe=True,
                                             params={"limit": limit, "cursor": cursor, "status": status}))

    def iter_jobs(self, status: str | None = None, *, project_id: str | None = None,
                  page_size: int = 50) -> Iterator[Job]:
        """The caller's jobs, newest first (without results), page by page; ``project_id``
        keeps one project's (the server filters a page, so pages may be short: all are read)."""
        cursor: str | None = None
        while True:
            body = self._json("GET", "/api/jobs", safe=True, params={"status": status, "limit": page_size,
                                                                     "cursor": cursor, "project_id": project_id})
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
        jid = _job_id(job_id)
        if isinstance(job_id, Job) and job_id.inline and job_id.is_final and job_id.is_rendered:
            return job_id if results else job_id.model_copy(update={"results": [], "next": None})
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


def _mappings(mappings: Sequence[Mapping[str, Any] | VariableMapping] | None) -> list[dict[str, Any]] | None:
    if mappings is None:
        return None
    return [m.model_dump(exclude_none=True) if isinstance(m, VariableMapping) else dict(m) for m in mappings]


def _canvas_fields(kind: str | None, canvas_json: Mapping[str, Any] | str | None,
                   variable_mappings: Sequence[Mapping[str, Any] | VariableMapping] | None,
                   bleed_mm: float | None) -> dict[str, Any]:
    if kind is None and (canvas_json is not None or variable_mappings is not None):
        kind = "canvas"
    return {"kind": kind, "canvas_json": dict(canvas_json) if isinstance(canvas_json, Mapping) else canvas_json,
            "variable_mappings": _mappings(variable_mappings), "bleed_mm": bleed_mm}


class Templates:
    """``client.templates``: versioned templates, HTML (``html_content``) or Fabric.js canvases
    (``kind="canvas"``: ``canvas_json``, ``width``/``height``, ``variable_mappings``). Ids:
    ``<section>`` or ``<section>_latest`` (the active version), ``<section>_v<N>``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def upload(self, section: str, name: str, html_content: str | None = None, *,
               kind: Literal["html", "canvas"] | None = None, canvas_json: Mapping[str, Any] | str | None = None,
               variable_mappings: Sequence[Mapping[str, Any] | VariableMapping] | None = None,
               bleed_mm: float | None = None, set_as_active: bool = True,
               placeholders: Sequence[Mapping[str, Any]] | None = None, width: int | None = None,
               height: int | None = None, size: str | None = None, format: str | None = None,
               javascript: bool | None = None, **extra: Any) -> Template:
        """A new version of ``section`` (``POST /api/templates/upload``). Each call makes a
        version, so it is retried only when the request surely did not arrive.

        An HTML template gives ``html_content``; a canvas gives ``canvas_json`` (Fabric's
        ``canvas.toJSON()``, a dict or its JSON text), the canvas's ``width`` and ``height`` in
        pixels and ``variable_mappings`` (``{"index", "field", "type": text|image|qr}``), with
        ``kind="canvas"`` (implied by ``canvas_json``). A bad canvas or mapping is a 422
        (``canvas_invalid``, ``mapping_invalid``) naming what is wrong."""
        body = _options({"section": section, "name": name, "html_content": html_content,
                         **_canvas_fields(kind, canvas_json, variable_mappings, bleed_mm),
                         "set_as_active": set_as_active,
                         "placeholders": [dict(p) for p in placeholders] if placeholders is not None else None,
                         "width": width, "height": height, "size": size, "format": format,
                         "javascript": javascript, **extra})
        return Template.model_validate(self._client._json("POST", "/api/templates/upload", safe=False, json=body))

    def update(self, template_id: str, html_content: str | None = None, *,
               kind: Literal["html", "canvas"] | None = None, canvas_json: Mapping[str, Any] | str | None = None,
               variable_mappings: Sequence[Mapping[str, Any] | VariableMapping] | None = None,
               bleed_mm: float | None = None, set_as_active: bool = True, **fields: Any) -> Template:
        """A new version from ``template_id`` (``PUT``); unset fields keep the current values
        (a canvas may get only new ``variable_mappings``, or only a new ``canvas_json``)."""
        canvas = _canvas_fields(kind, canvas_json, variable_mappings, bleed_mm)
        if kind is None:
            canvas["kind"] = None  # the server keeps the current version's kind
        body = _options({"html_content": html_content, **canvas, "set_as_active": set_as_active, **fields})
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


class Jobs:
    """``client.jobs``: reading jobs — one with its results, the listing, the log, the live
    stream. (:meth:`Client.wait`, :meth:`Client.cancel`, :meth:`Client.retry` act on them.)"""

    def __init__(self, client: Client) -> None:
        self._client = client

    def get(self, job_id: str | Job, *, status: str | None = None, page_size: int = 1000) -> Job:
        """:meth:`Client.job`: the job with every result (only ``status`` ones if given)."""
        return self._client.job(job_id, page_size=page_size, status=status)

    def list(self, status: str | None = None, *, project_id: str | None = None,
             page_size: int = 50) -> Iterator[Job]:
        """:meth:`Client.iter_jobs`: the caller's jobs, newest first."""
        return self._client.iter_jobs(status, project_id=project_id, page_size=page_size)

    def results(self, job_id: str | Job, *, status: str | None = None, page_size: int = 1000) -> Iterator[JobResult]:
        """The job's results page by page (``GET /api/jobs/{id}``, following ``next``);
        ``status`` ``failed|succeeded|skipped|cancelled|pending`` keeps only those items (a
        succeeded item reads ``status == "completed"``, as the seeds name it)."""
        jid, cursor = _job_id(job_id), None
        while True:
            page = self._client._job_page(jid, limit=page_size, cursor=cursor, status=status)
            yield from page.results
            cursor = page.next
            if not cursor:
                return

    def logs(self, job_id: str | Job, *, level: str | None = None, limit: int | None = None,
             page_size: int = 100) -> Iterator[LogLine]:
        """The job's log lines, newest first (``GET /api/jobs/{id}/logs``, following ``next``):
        ``level`` ``DEBUG|INFO|WARNING|ERROR`` keeps one level; ``limit`` stops after that many
        lines (None: all of them); ``page_size`` (1-1000) is the lines per request."""
        jid, cursor, left = _job_id(job_id), None, limit
        while left is None or left > 0:
            size = page_size if left is None else min(page_size, left)
            body = self._client._json("GET", _path("api", "jobs", jid, "logs"), safe=True,
                                      params={"level": level, "limit": size, "cursor": cursor})
            for line in body.get("logs", []):
                yield LogLine.model_validate(line)
                if left is not None:
                    left -= 1
                    if left <= 0:
                        return
            cursor = body.get("next")
            if not cursor:
                return

    def stream(self, job_id: str | Job, *, last_event_id: str | None = None, token: str | None = None,
               control_events: bool = False, reconnect: bool = True, max_reconnects: int = 5,
               read_timeout: float = 120.0) -> Iterator[StreamEvent]:
        """The job's Server-Sent Events (``GET /api/batch/jobs/{id}/stream``) as
        :class:`StreamEvent`\\ s, until ``job_completed`` / ``job_failed`` (yielded, then the
        iterator ends) or the server's 204 (a resumed stream that had seen the end).

        A connection that drops or ends early (the server's ``reconnect`` at its maximum
        duration) is opened again after the server's ``retry:`` delay with ``Last-Event-ID``
        (the last ``id:`` seen, or ``last_event_id`` to resume an earlier iteration), so no
        event is missed or repeated; after ``max_reconnects`` failed attempts in a row it
        raises :class:`TransportError`. ``reconnect=False`` ends the iterator instead.
        ``heartbeat`` and ``reconnect`` frames are handled here and not yielded unless
        ``control_events``. Authentication: the client's API key, else ``token`` (the job's
        token; a ``Job`` passed in lends its own when the client has no key). ``read_timeout``
        must exceed the server's heartbeat interval (30 s). Break out of the loop to stop
        following: the connection is closed."""
        client = self._client
        jid = _job_id(job_id)
        if token is None and client.api_key is None and isinstance(job_id, Job):
            token = job_id.token
        parser = EventParser(last_event_id=last_event_id)
        path = _path("api", "batch", "jobs", jid, "stream")
        base = client._http.timeout
        timeout = httpx.Timeout(base.connect, read=read_timeout, write=base.write, pool=base.pool)
        policy, failures = client.retry_policy, 0
        while True:
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            if parser.last_event_id:
                headers["Last-Event-ID"] = parser.last_event_id
            received = False
            try:
                with client._http.stream("GET", path, params={"token": token} if token else None, headers=headers,
                                         timeout=timeout) as response:
                    if response.status_code == 204:
                        return  # the stream had nothing more to say: the client saw the end
                    if not response.is_success:
                        response.read()
                        if failures + 1 < policy.max_attempts and policy.should_retry_status(response, safe=True):
                            failures += 1
                            policy.sleep(policy.delay(failures, response))
                            continue
                        raise _api_error(response)
                    media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
                    if media != "text/event-stream":
                        raise ApiError(response.status_code, "not_a_stream",
                                       f"the API answered {media or 'no content type'}, not text/event-stream",
                                       method="GET", url=path)
                    for line in response.iter_lines():
                        event = parser.line(line)
                        if event is None:
                            continue
                        received, failures = True, 0
                        if event.event in STREAM_CONTROL_EVENTS and not control_events:
                            continue
                        yield event
                        if event.is_end:
                            return
            except httpx.TransportError as exc:
                parser.reset()
                if not reconnect or failures >= max_reconnects:
                    raise TransportError(f"GET {path}: {type(exc).__name__}: {exc}") from exc
                failures += 1
                client._sleep(self._retry_s(parser, failures))
                continue
            parser.reset()  # a frame cut off by the end of the connection is dropped
            if not reconnect:
                return
            if not received:
                failures += 1
                if failures > max_reconnects:
                    raise TransportError(f"GET {path}: the stream ended {failures} times in a row without an event")
            client._sleep(self._retry_s(parser, failures))

    @staticmethod
    def _retry_s(parser: EventParser, failures: int) -> float:
        """The server's ``retry:`` (1 s without one), doubled for each failure in a row after
        the first, at most 30 s."""
        base = (parser.retry_ms if parser.retry_ms is not None else 1000) / 1000
        return float(min(30.0, base * (2 ** max(0, failures - 1))))


class Batch:
    """``client.batch``: seed 004's face-crop batch routes."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def upload_zip(self, zip_file: str | os.PathLike[str] | bytes, *, filename: str | None = None,
                   project_id: str | None = None, priority: int | None = None, notify_email: str | None = None,
                   webhook_url: str | None = None, idempotency_key: str | None = None,
                   max_bytes: int | None = UPLOAD_ZIP_MAX_BYTES) -> ZipUpload:
        """A ZIP of photos (a path or its bytes) as one crop job, in one multipart request
        (``POST /api/batch/upload-zip``): the answer has the job and the counts the server read
        from the ZIP's directory (``image_count``, ``queued``, ``skipped``, ``refused``).

        The form may be at most the server's ``POSTERFLOW_UPLOAD_ZIP_MAX_BYTES`` (4 MiB by
        default; ``max_bytes`` is the client's check before sending, ``None`` to leave it to the
        server). A bigger ZIP raises :class:`ZipTooLarge` (413) before anything is sent, or when
        the server refuses it, telling the caller to use :meth:`Client.upload_zip` (a presigned
        PUT of up to 5 GB; it takes ``priority``, ``notify_email`` and ``webhook_url``, but not
        ``project_id``). Other refusals: 422 ``missing_file``, ``invalid_zip``, ``no_photos``,
        ``validation_error`` (e.g. ``priority`` not 1-10); none leaves a job behind."""
        client = self._client
        if isinstance(zip_file, bytes | bytearray | memoryview):
            data, name = bytes(zip_file), filename or "photos.zip"
        else:
            path = Path(zip_file)
            size = path.stat().st_size
            if max_bytes is not None and size > max_bytes:
                raise self._too_large(size, max_bytes, None)
            data, name = path.read_bytes(), filename or path.name
        form = _options({"projectId": project_id, "priority": str(priority) if priority is not None else None,
                         "notifyEmail": notify_email, "webhookUrl": webhook_url})
        files = {"file": (name, data, "application/zip")}
        size = int(client._http.build_request("POST", UPLOAD_ZIP_ROUTE, files=files, data=form)
                   .headers.get("content-length", len(data)))
        if max_bytes is not None and size > max_bytes:
            raise self._too_large(size, max_bytes, None)
        headers = {IDEMPOTENCY_HEADER: idempotency_key or new_idempotency_key()}
        response = client._send("POST", UPLOAD_ZIP_ROUTE, safe=True, files=files, data=form, headers=headers)
        if response.status_code == 413:
            error = _api_error(response)
            limit = error.details.get("max_bytes") if isinstance(error.details, dict) else None
            raise self._too_large(size, int(limit) if isinstance(limit, int) else None, error)
        client._raise(response)
        return ZipUpload.model_validate(response.json())

    def add_images(self, images: Sequence[str | Mapping[str, Any]], *, batch_id: str | None = None,
                   project_id: str | None = None, priority: int | None = None, name: str | None = None,
                   options: Mapping[str, Any] | None = None, notify_email: str | None = None,
                   webhook_url: str | None = None, metadata: Mapping[str, Any] | None = None,
                   idempotency_key: str | None = None) -> Job:
        """Face crops of images by S3 key (the caller's own, under ``uploads/``) or allow-listed
        URL (``POST /api/batch/add-images``): each image is a key or URL string, or
        ``{"key"|"url": …, "id": …}``. ``options``: ``size``, ``format`` (jpeg/webp),
        ``quality``, ``all_faces``, ``max_faces``, ``padding``, ``hair``, ``min_score``.
        ``batch_id`` (caller-chosen) makes a repeat of the same request return the same job;
        the same id with other images is a 409 ``Conflict``."""
        body = _options({"images": [i if isinstance(i, str) else dict(i) for i in images], "batch_id": batch_id,
                         "project_id": project_id, "priority": priority, "name": name,
                         "options": dict(options) if options is not None else None, "notify_email": notify_email,
                         "webhook_url": webhook_url, "metadata": dict(metadata) if metadata is not None else None})
        return self._client._create_job("/api/batch/add-images", body, idempotency_key)

    def status(self, batch_id: str | Job) -> BatchStatus:
        """Seed 004's batch status (``GET /api/batch/status/{id}``) of any job: ``status``,
        ``progress`` counts, ``progress_percent``, ``archive_url``."""
        body = self._client._json("GET", _path("api", "batch", "status", _job_id(batch_id)), safe=True)
        return BatchStatus.model_validate(body.get("batch") or {})

    @staticmethod
    def _too_large(size: int, limit: int | None, error: ApiError | None) -> ZipTooLarge:
        over = f"over the limit of {limit} bytes" if limit is not None else "over the server's limit"
        message = (f"the upload-zip form is {size} bytes, {over} (POSTERFLOW_UPLOAD_ZIP_MAX_BYTES): upload a ZIP "
                   "this big with client.upload_zip(path) (POST /api/uploads, a presigned PUT of up to 5 GB)")
        if error is not None:
            message += f"; the server said: {error.message}"
        return ZipTooLarge(413, error.code if error is not None else "zip_too_large", message,
                           error.details if error is not None else {"max_bytes": limit, "size_bytes": size},
                           max_bytes=limit, size_bytes=size, method="POST",
                           url=error.url if error is not None else UPLOAD_ZIP_ROUTE,
                           headers=error.headers if error is not None else None)


class Stats:
    """``client.stats``: the calling tenant's write-time aggregates (``GET /api/stats/*``).
    ``since``/``until`` are UTC days (``"YYYY-MM-DD"``, a ``date`` or a ``datetime``;
    default: the 30 days ending today; at most 366 days, else 422 ``invalid_date``)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def templates(self, section: str | None = None, *, since: str | dt.date | None = None,
                  until: str | dt.date | None = None) -> TemplateStats:
        """Per template section (or just ``section``), each with its versions (newest first):
        jobs, items, succeeded, failed, ``generation_ms`` (avg, min, max, p50, p95),
        ``avg_job_duration_ms``."""
        return TemplateStats.model_validate(self._client._json(
            "GET", "/api/stats/templates", safe=True,
            params={"section": section, "since": _day(since), "until": _day(until)}))

    def crops(self, *, since: str | dt.date | None = None, until: str | dt.date | None = None) -> CropStats:
        """The same for crop jobs, with ``faces_found`` and ``crop_ms``."""
        return CropStats.model_validate(self._client._json(
            "GET", "/api/stats/crops", safe=True, params={"since": _day(since), "until": _day(until)}))
