"""posterflow-client's ``jobs.stream``: the event-stream parser (no server), then the job streams of
the local cloud (``GET /api/batch/jobs/{id}/stream``): every event to ``job_completed``, a
resume with ``Last-Event-ID`` (no duplicates, no gaps), a dropped connection reopened after the
server's ``retry:`` delay, and refused streams as typed errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from posterflow_client import Client, Job, NotFound, StreamEvent, Unauthorized
from posterflow_client.sse import EventParser

HTML = "<div style='font:16px sans-serif;background:#234;color:#fff;height:100px'>Hi {{ name }}</div>"
OUT: dict[str, Any] = {"format": "jpeg", "width": 200, "height": 100}
LOGGED = {"status", "progress", "poster_completed", "item_completed", "log", "job_completed", "job_failed"}


def _parse(text: str, parser: EventParser | None = None) -> list[StreamEvent]:
    return list((parser or EventParser()).feed(text.splitlines()))


def test_parser_follows_the_event_stream_rules() -> None:
    parser = EventParser()
    events = _parse("retry: 2500\n\n: a comment\nid: 1.0\nevent: connected\ndata: {\"a\": 1}\n\n"
                    "data: line one\ndata:line two\n\n"
                    "id: 2.1\nevent: progress\ndata: {\"percent\": 50}\n\n"
                    "retry: soon\nid: bad\0id\nevent: log\ndata: 3\n\n"
                    "event: ignored-without-data\n\n"
                    "event: half\ndata: cut off", parser)
    assert [(e.event, e.id, e.data) for e in events] == [
        ("connected", "1.0", {"a": 1}), ("message", "1.0", "line one\nline two"),
        ("progress", "2.1", {"percent": 50}), ("log", "2.1", 3)]
    assert parser.retry_ms == 2500 and parser.last_event_id == "2.1"
    assert events[1].raw == "line one\nline two" and not events[0].is_end
    assert _parse("event: job_completed\r\ndata: {}\r\n\r\n")[0].is_end


@pytest.fixture(scope="module")
def pf(cloud: Any) -> Iterator[Client]:
    with Client(cloud.gateway.rest_url, api_key=f"pystream-{uuid.uuid4().hex[:8]}", timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def template_id(pf: Client) -> str:
    section = f"pysse-{uuid.uuid4().hex[:6]}"
    pf.templates.upload(section, "Stream card", HTML, **OUT)
    return f"{section}_latest"


def _batch(pf: Client, template_id: str, n: int) -> Job:
    return pf.generate_batch(template_id, [{"entity_id": f"e{i}", "name": f"N{i}"} for i in range(n)], **OUT)


def _logged_ids(events: list[StreamEvent]) -> list[str]:
    return [e.id or "" for e in events
            if e.event in LOGGED and isinstance(e.data, dict) and not e.data.get("snapshot")]


def test_stream_to_job_completed(pf: Client, template_id: str) -> None:
    job = _batch(pf, template_id, 3)
    assert job.sse_endpoint and job.sse_endpoint.startswith(f"/api/templates/job/{job.job_id}/stream")
    events = list(pf.jobs.stream(job))
    names = [e.event for e in events]
    assert names[0] == "connected" and names[-1] == "job_completed" and names.count("job_completed") == 1
    assert "heartbeat" not in names and all(e.id for e in events)
    posters = [e.data for e in events if e.event == "poster_completed"]
    assert sorted(p["entity_id"] for p in posters) == ["e0", "e1", "e2"]
    assert events[-1].data["job_id"] == job.job_id and events[-1].data["success_count"] == 3
    # A client that comes after the end gets the whole log at once, and the iterator ends.
    assert pf.wait(job, timeout=60, poll_interval=0.2, results=False).is_final
    again = list(pf.jobs.stream(job.job_id))
    assert [e.event for e in again][:2] == ["connected", "status"] and again[1].data["snapshot"] is True
    assert again[-1].event == "job_completed" and [e.event for e in again].count("job_completed") == 1
    assert sorted(e.data["entity_id"] for e in again if e.event == "poster_completed") == ["e0", "e1", "e2"]


def test_resume_with_last_event_id_has_no_duplicates_and_no_gaps(pf: Client, template_id: str) -> None:
    job = _batch(pf, template_id, 4)
    first: list[StreamEvent] = []
    for event in pf.jobs.stream(job):
        first.append(event)
        if event.event == "poster_completed":
            break  # leaving closes the connection
    rest = list(pf.jobs.stream(job, last_event_id=first[-1].id))
    assert rest[0].event == "connected" and rest[0].data["resumed"] is True and rest[-1].event == "job_completed"
    assert not any(isinstance(e.data, dict) and e.data.get("snapshot") for e in rest)
    everything = list(pf.jobs.stream(job, last_event_id="0.0"))
    joined = _logged_ids(first) + _logged_ids(rest)
    assert len(joined) == len(set(joined)) and joined == _logged_ids(everything)
    assert sorted(e.data["entity_id"] for e in first + rest if e.event == "poster_completed") == [
        "e0", "e1", "e2", "e3"]
    # Having seen the end, a resume is answered 204 (or late log lines only): the iterator ends.
    late = list(pf.jobs.stream(job, last_event_id=_logged_ids(rest)[-1]))
    assert {e.event for e in late} <= {"connected", "log"}


class DropAfterFirstPoster(httpx.BaseTransport):
    """The real cloud, but the first stream's connection breaks after its first
    ``poster_completed`` frame (as a proxy timing out would)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.streams: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not request.url.path.endswith("/stream"):
            return response
        self.streams.append(request)
        if len(self.streams) > 1:
            return response
        upstream = response.stream

        class Cut(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                seen = b""
                for chunk in upstream:  # type: ignore[union-attr]
                    seen += chunk
                    if b"event: poster_completed" in seen:
                        head, _, _tail = seen.partition(b"event: poster_completed")
                        end = seen.index(b"\n\n", len(head)) + 2
                        yield seen[:end]
                        raise httpx.ReadError("connection reset", request=request)
                    if b"\n\n" in seen:
                        cut = seen.rindex(b"\n\n") + 2
                        yield seen[:cut]
                        seen = seen[cut:]

            def close(self) -> None:
                response.close()

        return httpx.Response(response.status_code, headers=response.headers, stream=Cut(), request=request)

    def close(self) -> None:
        self.inner.close()


def test_a_dropped_stream_reconnects_after_retry_with_last_event_id(cloud: Any, pf: Client,
                                                                  template_id: str) -> None:
    transport = DropAfterFirstPoster()
    with Client(cloud.gateway.rest_url, api_key=pf.api_key, timeout=60, transport=transport) as flaky:
        sleeps: list[float] = []
        flaky._sleep = sleeps.append
        job = _batch(flaky, template_id, 3)
        events = list(flaky.jobs.stream(job))
    assert len(transport.streams) == 2
    assert "last-event-id" not in transport.streams[0].headers
    cut_at = next(e for e in events if e.event == "poster_completed")
    assert transport.streams[1].headers["last-event-id"] == cut_at.id
    retry_ms = next(e for e in events if e.event == "connected").data["stream"]["retry_ms"]
    assert sleeps == [retry_ms / 1000]  # the server's retry: hint
    assert events[-1].event == "job_completed"
    ids = _logged_ids(events)
    assert len(ids) == len(set(ids))
    assert sorted(e.data["entity_id"] for e in events if e.event == "poster_completed") == ["e0", "e1", "e2"]


class Streams(httpx.BaseTransport):
    """The real cloud; keeps the stream requests."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.streams: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/stream"):
            self.streams.append(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_the_servers_reconnect_at_its_maximum_duration_is_followed(cloud: Any, pf: Client, template_id: str,
                                                                   tmp_path: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # The stream function runs in this process: a 1 s maximum makes it send reconnect and close.
    monkeypatch.setenv("POSTERFLOW_SSE_MAX_DURATION_S", "1")
    monkeypatch.setenv("POSTERFLOW_SSE_RETRY_MS", "300")
    transport = Streams()
    with Client(cloud.gateway.rest_url, api_key=pf.api_key, timeout=60, transport=transport) as client:
        sleeps: list[float] = []
        client._sleep = sleeps.append
        rows = tmp_path / "rows.csv"
        rows.write_text("name\nAnn\n", encoding="utf-8")
        # A job whose rows arrive after the first stream has reached its maximum.
        job = client._create_job("/api/uploads", {"kind": "poster", "template_id": template_id,
                                                  "filename": "rows.csv", **OUT}, None)
        seen: list[StreamEvent] = []
        for event in client.jobs.stream(job, control_events=True):
            seen.append(event)
            if event.event == "reconnect" and len(transport.streams) == 1:
                monkeypatch.setenv("POSTERFLOW_SSE_MAX_DURATION_S", "60")
                assert job.upload_url
                put = httpx.put(job.upload_url, content=rows.read_bytes(), headers=job.upload_headers, timeout=60)
                assert put.status_code == 200
    names = [e.event for e in seen]
    assert names[:2] == ["connected", "status"] and "reconnect" in names and names[-1] == "job_completed"
    assert len(transport.streams) == 2 and sleeps[0] == 0.3  # the retry: hint
    first_reconnect = names.index("reconnect")
    assert transport.streams[1].headers["last-event-id"] == seen[first_reconnect].id
    assert seen[first_reconnect + 1].event == "connected" and seen[first_reconnect + 1].data["resumed"] is True
    assert [e.data["entity_id"] for e in seen if e.event == "poster_completed"] == ["0"]


def test_refused_streams_are_typed_errors(cloud: Any, pf: Client, template_id: str) -> None:
    with pytest.raises(NotFound) as missing:
        list(pf.jobs.stream(f"job_{uuid.uuid4().hex[:12]}"))
    assert missing.value.code == "job_not_found"
    job = _batch(pf, template_id, 1)
    with Client(cloud.gateway.rest_url, api_key=f"other-{uuid.uuid4().hex[:6]}") as other:
        with pytest.raises(NotFound):
            list(other.jobs.stream(job.job_id))  # another tenant's job does not exist for it
        with pytest.raises(Unauthorized) as wrong_token:
            list(other.jobs.stream(job.job_id, token="not-the-token"))
        assert wrong_token.value.status == 403 and wrong_token.value.code == "invalid_token"
    # The job's token works without the tenant's key.
    with Client(cloud.gateway.rest_url) as keyless:
        events = list(keyless.jobs.stream(job.job_id, token=job.token))
    assert events[-1].event == "job_completed"
