"""Server-Sent Events job streams (seeds 000 and 001): ``GET /api/templates/job/{id}/stream`` and
``GET /api/batch/jobs/{id}/stream``.

A stream is read from the job's frame log (:mod:`posterflow.progress.sse_log`), one Query per
poll interval. It opens with a ``retry:`` hint, ``connected`` and (unless it resumes) a
``status`` snapshot, then sends every logged frame after its cursor: ``status``, ``progress``
(percent, ETA), one ``poster_completed`` (posters) / ``item_completed`` per finished item,
``log``, and at the end ``job_completed`` or ``job_failed``, after which it closes. Each frame's
``id:`` is its place in the log (``<stream sequence number>.<slot>``), so an ``EventSource``
that reconnects sends it back as ``Last-Event-ID`` and gets exactly the frames after it. A
cursor that is no longer in the log gets a fresh ``status`` snapshot instead. A stream with
nothing to say for :func:`~posterflow.config.sse_heartbeat_s` sends a ``heartbeat``; one that
reaches :func:`~posterflow.config.sse_max_duration_s` sends ``reconnect`` and closes (the
client comes back with its ``Last-Event-ID``). A client that connects after the job ended gets
the snapshot, the job's logged frames and ``job_completed`` / ``job_failed`` at once, and the
stream closes (a job whose log holds no end gets its end from the job record); one that
reconnects after it saw the end gets 204, which tells ``EventSource`` to stop.

Who may read a stream: the job's token (``?token=``, as ``EventSource`` cannot send headers),
or an API key of the job's tenant (API Gateway's ``identity.apiKeyId`` when it checked the key;
else the ``x-api-key`` header, checked against this API's usage plans). Without either, the
stream is refused (401) unless :func:`~posterflow.config.sse_keyless_tenant` names a tenant
(the local cloud, where no key is needed).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from posterflow import aws, config, jobs, tenancy, tokens
from posterflow.errors import PosterflowError, Reason
from posterflow.jobs import _ddb as d
from posterflow.progress import events, sse_log
from posterflow.progress.sse_log import Cursor, Entry, Frame

ROUTES = (re.compile(r"^/api/templates/job/(?P<job_id>[^/]+)/stream$"),
          re.compile(r"^/api/batch/jobs/(?P<job_id>[^/]+)/stream$"))
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
MAX_TOKEN_CHARS = 256
MAX_KEY_CHARS = 256
# Past every slot of a record: a cursor there means "after this whole record".
_AFTER_RECORD = 9
_END_EVENTS = frozenset({"job_completed", "job_failed"})
# How long a stream of an ended job waits for the end to reach the log (the progress function
# runs a moment behind the table) before it answers from the job record.
END_GRACE_S = 5.0
PresignFn = Callable[[str], str]


class StreamRefused(PosterflowError):
    """A stream request that is not answered with a stream (401, 403, 404)."""

    reason = Reason.UNAUTHENTICATED


class StreamRequest(BaseModel):
    """What a stream request carries, as the stream function's server read it (lengths are
    checked by :func:`authorize` and :meth:`Cursor.parse`, so a bad value is a 401/403 or a
    snapshot, never a validation error)."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    token: str | None = None
    api_key: str | None = None
    api_key_id: str | None = None
    last_event_id: str | None = None


def route_job_id(path: str) -> str | None:
    """The job id of a stream path, or None when the path is not a stream route."""
    for route in ROUTES:
        m = route.match(path)
        if m:
            return m.group("job_id")
    return None


def stream_path(job_id: str, *, seed: str = "templates") -> str:
    """The stream route of a job (``templates``: seed 001's, ``batch``: seed 000's)."""
    return f"/api/batch/jobs/{job_id}/stream" if seed == "batch" else f"/api/templates/job/{job_id}/stream"


# ---- who may read ---------------------------------------------------------------------------------


class ApiKeys:
    """API key values → their ids (the tenant), for streams reached without API Gateway's key
    check. A key counts only if it is enabled and in a usage plan of this REST API. Answers are
    cached per instance for :attr:`ttl_s` (a revoked key keeps working that long)."""

    def __init__(self, api_id: str | None = None, *, ttl_s: float = 300.0) -> None:
        self._api_id = api_id
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    @property
    def api_id(self) -> str:
        if self._api_id is not None:
            return self._api_id
        host = urlsplit(config.api_url()).hostname or ""
        return host.split(".", 1)[0] if ".execute-api." in host else ""

    def tenant_of(self, value: str) -> str | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(value)
            if hit is not None and now - hit[0] < self.ttl_s:
                return hit[1]
        tenant = self._look_up(value)
        with self._lock:
            if len(self._cache) > 1024:
                self._cache.clear()
            self._cache[value] = (now, tenant)
        return tenant

    def _look_up(self, value: str) -> str | None:
        api_id = self.api_id
        if not api_id:
            return None
        gateway = aws.client("apigateway")
        key_id = None
        for page in gateway.get_paginator("get_api_keys").paginate(includeValues=True):
            for key in page.get("items", []):
                if key.get("value") == value and key.get("enabled", False):
                    key_id = str(key["id"])
                    break
            if key_id:
                break
        if key_id is None:
            return None
        for page in gateway.get_paginator("get_usage_plans").paginate(keyId=key_id):
            for plan in page.get("items", []):
                if any(stage.get("apiId") == api_id for stage in plan.get("apiStages", [])):
                    return tenancy.normalise(key_id)
        return None


api_keys = ApiKeys()


def authorize(request: StreamRequest, keys: ApiKeys | None = None) -> jobs.Job:
    """The job, if the request may read its stream; raises :class:`StreamRefused` or
    :class:`~posterflow.jobs.JobNotFound` (404, also for another tenant's job)."""
    job_id = request.job_id
    if not _JOB_ID.match(job_id):
        raise jobs.JobNotFound(job_id)
    if request.token is not None:
        if not request.token or len(request.token) > MAX_TOKEN_CHARS:
            raise StreamRefused("?token= is empty or too long: pass the job's token", reason=Reason.UNAUTHENTICATED)
        if not tokens.verify_job_token(job_id, request.token):
            raise StreamRefused("the token does not grant access to this job", reason=Reason.INVALID_TOKEN)
        job = jobs.find_job(job_id)
        if job is None:
            raise jobs.JobNotFound(job_id)
        return job
    if request.api_key_id:
        tenant: str | None = tenancy.normalise(request.api_key_id)
    elif request.api_key:
        if len(request.api_key) > MAX_KEY_CHARS:
            raise StreamRefused("the API key is not valid for this API", reason=Reason.INVALID_API_KEY)
        tenant = (keys or api_keys).tenant_of(request.api_key)
        if tenant is None:
            raise StreamRefused("the API key is not valid for this API", reason=Reason.INVALID_API_KEY)
    else:
        tenant = config.sse_keyless_tenant()
        if tenant is None:
            raise StreamRefused("pass the job's token (?token=) or an API key (x-api-key)",
                                reason=Reason.UNAUTHENTICATED)
    return jobs.owned_job(job_id, tenant)


# ---- the stream -----------------------------------------------------------------------------------

_lock = threading.Lock()
_active = 0


def active_streams() -> int:
    """Streams of this process still running (a stream ends when its client goes)."""
    with _lock:
        return _active


def _track(delta: int) -> None:
    global _active
    with _lock:
        _active += delta


def encode(event_id: str, event: str, data: Mapping[str, Any]) -> bytes:
    text = json.dumps(data, separators=(",", ":"), default=str)  # one line: JSON escapes newlines
    return f"id: {event_id}\nevent: {event}\ndata: {text}\n\n".encode()


def _job_image(job: jobs.Job) -> dict[str, Any]:
    return job.model_dump(mode="json")


def _is_end(frame: Frame) -> bool:
    return frame.event in _END_EVENTS or (frame.event == "status" and bool(frame.body.get("final")))


def _head(job_id: str) -> int:
    raw = d.ddb().get_item(TableName=d.table(), Key=d.key(d.job_pk(job_id), sse_log.HEAD_SK),
                           ConsistentRead=True).get("Item")
    head = str(d.from_item(raw).get("head", "")) if raw else ""
    return int(head) if head.isdigit() else 0


def _presign(key: str) -> str:
    from posterflow.progress.broadcast import presign_get  # broadcast pulls in the WebSocket side

    return presign_get(key)


@dataclass
class JobStream:
    """One client's stream of one job. :attr:`status` is 200 (then iterate :meth:`chunks`) or
    204 (the client saw the end already: nothing to send, and EventSource stops)."""

    job: jobs.Job
    last_event_id: str | None = None
    poll_s: float = field(default_factory=config.sse_poll_s)
    heartbeat_s: float = field(default_factory=config.sse_heartbeat_s)
    max_duration_s: float = field(default_factory=config.sse_max_duration_s)
    retry_ms: int = field(default_factory=config.sse_retry_ms)
    presign: PresignFn | None = _presign
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    status: int = 200
    reader: sse_log.Reader = field(init=False)
    _cursor: Cursor = field(init=False)
    _first: list[Entry] = field(init=False, default_factory=list)
    _more: bool = field(init=False, default=False)
    _snapshot: bool = field(init=False, default=True)
    _polled: bool = field(init=False, default=False)
    _seen_end: bool = field(init=False, default=False)
    _unknown_cursor: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.reader = sse_log.Reader(self.job.job_id)
        self._round = self.job.finalize_round
        header = self.last_event_id
        cursor = Cursor.parse(header)
        if header is None or not header.strip():
            # A fresh client: the job's whole log at once (an ended job's too, so a seed client
            # that counts poster_completed frames counts them all), then live frames.
            self._cursor = sse_log.START
            return
        if cursor is None:
            # Not an id of ours: a snapshot, then what comes next (an ended job: its end, now).
            self._cursor = Cursor(_head(self.job.job_id), _AFTER_RECORD)
            self._unknown_cursor = True
            return
        self._cursor = cursor
        self._first, self._more = self.reader.poll(cursor)
        self._polled = True
        found = cursor.seq == 0 or any(e.seq == cursor.seq for e in self._first)
        self._snapshot = not found
        # The client saw the job's end already: it gets what was logged after (late logs), then
        # the stream closes; with nothing after, 204 tells EventSource not to come back.
        end = self.reader.end
        self._seen_end = (self.job.is_final and end is not None and end[1] >= self._round
                          and cursor >= Cursor(end[0], sse_log.SLOT_FINAL_STATUS))
        if self._seen_end and not self._more and not list(sse_log.frames_after(self._first, cursor)):
            self.status = 204

    # ---- frames -------------------------------------------------------------------------------
    def _frame(self, cursor: Cursor, body: Mapping[str, Any]) -> bytes:
        return encode(cursor.event_id, str(body.get("event") or "message"), body)

    def _opening(self) -> Iterator[bytes]:
        yield f"retry: {self.retry_ms}\n\n".encode()
        image = _job_image(self.job)
        yield self._frame(self._cursor, {
            "event": "connected", **events.job_fields(image),
            "resumed": self.last_event_id is not None,
            "stream": {"poll_s": self.poll_s, "heartbeat_s": self.heartbeat_s,
                       "max_duration_s": self.max_duration_s, "retry_ms": self.retry_ms},
        })
        if self._snapshot:
            yield self._frame(self._cursor, {**events.status(image, None), "snapshot": True})

    def _end_from_record(self) -> bytes | None:
        """The end of an ended job whose log holds none (it ended before the log existed, or its
        records are gone): job_completed / job_failed from the job record itself."""
        job = jobs.find_job(self.job.job_id) or self.job
        image = _job_image(job)
        cursor = Cursor(max(self._cursor.seq, _head(job.job_id)), _AFTER_RECORD)
        if job.status in events.COMPLETED_STATUSES:
            body = {**events.job_completed(image, None), sse_log.ARCHIVE_KEY: job.archive_key}
            merged = events.merged_pdf_keys(image)
            if merged is not None:
                body[sse_log.MERGED_PDF_KEYS] = merged
            return self._frame(cursor, sse_log.presign_frame(body, self.presign))
        if job.status == "failed":
            return self._frame(cursor, events.job_failed(image))
        return self._frame(cursor, {**events.status(image, None), "snapshot": True})

    def _deliver(self, entry: Entry) -> tuple[list[bytes], bool]:
        out: list[bytes] = []
        ended = False
        for frame in entry.sorted():
            if frame.cursor <= self._cursor:
                continue
            self._cursor = frame.cursor
            # A retried job's earlier rounds ended too; a client follows the current round.
            if _is_end(frame) and int(frame.body.get("round") or 0) < self._round:
                continue
            out.append(self._frame(frame.cursor, sse_log.presign_frame(frame.body, self.presign)))
            ended = ended or _is_end(frame)
        return out, ended

    def chunks(self, alive: Callable[[], bool] = lambda: True) -> Generator[bytes, None, None]:
        """The stream's bytes, frame by frame; ends at the job's end, at the maximum duration,
        or when ``alive()`` says the client has gone (checked every poll interval)."""
        _track(+1)
        try:
            yield from self._opening()
            if self._unknown_cursor and self.job.is_final:
                end = self._end_from_record()
                if end is not None:
                    yield end
                return
            started = last_sent = self.clock()
            pending = (self._first, self._more) if self._polled else None
            while True:
                if pending is None:
                    entries, more = self.reader.poll(self._cursor)
                else:
                    (entries, more), pending = pending, None
                for entry in entries:
                    out, ended = self._deliver(entry)
                    yield from out
                    if out:
                        last_sent = self.clock()
                    if ended:
                        return  # job_completed / job_failed is the last frame a stream sends
                if self._seen_end and not more:
                    return  # a client that saw the end: whatever was logged after it, then close
                now = self.clock()
                if (self.job.is_final and not more and now - started >= END_GRACE_S
                        and (self.reader.end is None or self.reader.end[1] < self._round)):
                    end = self._end_from_record()  # ended, and the log never got its end
                    if end is not None:
                        yield end
                    return
                if now - started >= self.max_duration_s:
                    yield self._frame(self._cursor, {
                        "event": "reconnect", "job_id": self.job.job_id, "reason": "max_duration",
                        "retry_ms": self.retry_ms,
                        "message": "the stream reached its maximum duration: reconnect with Last-Event-ID"})
                    return
                if now - last_sent >= self.heartbeat_s:
                    yield self._frame(self._cursor, {**events.heartbeat([self.job.job_id]), "job_id": self.job.job_id})
                    last_sent = now
                if more:
                    continue
                if not alive():
                    return
                self.sleep(self.poll_s)
                if not alive():
                    return
        finally:
            _track(-1)


def open_stream(request: StreamRequest, **options: Any) -> JobStream:
    """Check the request and open the job's stream (raises :class:`StreamRefused` / 404)."""
    job = authorize(request)
    return JobStream(job, request.last_event_id, **options)
