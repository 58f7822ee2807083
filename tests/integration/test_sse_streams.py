"""Server-Sent Events job streams on the local cloud (issue 17): seed 000's ``curl -N`` stream,
reconnects with ``Last-Event-ID`` (no duplicates, no gaps), a client that comes after the end,
refused streams, and a client that leaves mid-stream."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from posterflow import jobs, tokens
from posterflow.progress import sse
from tests.integration.helpers import api, upload_card_template, wait_for

HTML = "<div style='font:18px sans-serif'>{{ name }}</div>"
LOG_EVENTS = {"status", "progress", "poster_completed", "item_completed", "log", "job_completed", "job_failed"}


@dataclass
class Event:
    id: str | None
    event: str
    data: dict[str, Any]


def parse(text: str) -> tuple[list[Event], list[str]]:
    """SSE text → events, and every ``retry:`` value seen."""
    events: list[Event] = []
    retries: list[str] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        if "retry" in fields:
            retries.append(fields["retry"])
        if "data" in fields:
            events.append(Event(fields.get("id"), fields.get("event", "message"), json.loads(fields["data"])))
    return events, retries


class Stream:
    """An SSE client on a raw connection: read frames one at a time, leave when it likes."""

    def __init__(self, cloud: Any, path: str, headers: dict[str, str] | None = None, timeout: float = 60) -> None:
        url = urlsplit(cloud.gateway.rest_url)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
        self.conn.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
        self.resp = self.conn.getresponse()
        self._buffer = ""

    @property
    def status(self) -> int:
        return int(self.resp.status)

    def events(self) -> Iterator[Event]:
        while True:
            while "\n\n" not in self._buffer:
                line = self.resp.readline()  # chunked decoding by http.client
                if not line:
                    return
                self._buffer += line.decode()
            block, self._buffer = self._buffer.split("\n\n", 1)
            parsed, _ = parse(block + "\n\n")
            yield from parsed

    def close(self) -> None:
        self.conn.close()


@pytest.fixture(scope="module")
def template_id(cloud: Any) -> str:
    return upload_card_template(cloud, "sse", HTML, name="SSE card")


def _batch(cloud: Any, template_id: str, n: int) -> dict[str, Any]:
    items = [{"entity_id": f"e{i}", "name": f"Name {i}"} for i in range(n)]
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {"template_id": template_id, "items": items})
    assert status == 202, body
    assert body["sse_endpoint"] == f"/api/templates/job/{body['job_id']}/stream?token={body['token']}"
    return dict(body)


def _final(job_id: str) -> jobs.Job:
    def done() -> jobs.Job | None:
        job = jobs.get_job(job_id)
        return job if job.is_final else None

    return wait_for(done, timeout=90, interval=0.2, what=f"job {job_id} to finish")


def _log_ids(events: list[Event]) -> list[str]:
    """Ids of the frames that come from the job's log (not the opening snapshot or heartbeats)."""
    return [e.id for e in events if e.event in LOG_EVENTS and not e.data.get("snapshot") and e.id]


def test_seed_000_curl_stream_sees_every_poster_then_job_completed(cloud: Any, template_id: str) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("no curl")
    job = _batch(cloud, template_id, 3)
    url = f"{cloud.gateway.rest_url}/api/batch/jobs/{job['job_id']}/stream"
    # Seed 000's command, unchanged but for the host and the job id; it ends when the stream does.
    done = subprocess.run([curl, "-N", "-sS", "-D", "-", url], capture_output=True, timeout=90, check=True)
    head, _, body = done.stdout.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200")
    assert "content-type: text/event-stream" in head.lower()
    assert "transfer-encoding: chunked" in head.lower()
    events, retries = parse(body)
    names = [e.event for e in events]
    assert retries and int(retries[0]) > 0
    assert names[:2] == ["connected", "status"], names
    assert names[-1] == "job_completed" and names.count("job_completed") == 1, names
    posters = [e.data for e in events if e.event == "poster_completed"]
    assert sorted(p["entity_id"] for p in posters) == ["e0", "e1", "e2"]
    assert all(p["success"] is True and p["job_id"] == job["job_id"] and p["poster_url"].startswith("http")
               for p in posters)
    assert "progress" in names and all("percent" in e.data and "eta_s" in e.data for e in events
                                       if e.event == "progress")
    end = events[-1].data
    assert (end["job_id"], end["success_count"], end["total_count"]) == (job["job_id"], 3, 3)
    assert all(e.id for e in events), "every frame has an id"


def test_reconnect_with_last_event_id_has_no_duplicates_and_no_gaps(cloud: Any, template_id: str) -> None:
    job = _batch(cloud, template_id, 4)
    path = f"/api/templates/job/{job['job_id']}/stream?token={job['token']}"
    first = Stream(cloud, path)
    assert first.status == 200
    part1: list[Event] = []
    for event in first.events():
        part1.append(event)
        if event.event == "poster_completed":
            break  # leave after the first poster
    first.close()
    assert part1[-1].event == "poster_completed"
    _final(job["job_id"])
    time.sleep(1.0)  # the stream handler logs the end a moment after the table has it
    second = Stream(cloud, path, {"Last-Event-ID": str(part1[-1].id)})
    assert second.status == 200
    part2 = list(second.events())
    second.close()
    assert part2[0].event == "connected" and part2[0].data["resumed"] is True
    assert not any(e.data.get("snapshot") for e in part2), "a resume with a known cursor gets no snapshot"
    assert part2[-1].event == "job_completed"
    # The whole log, replayed from before its first frame.
    everything = Stream(cloud, path, {"Last-Event-ID": "0.0"})
    full = list(everything.events())
    everything.close()
    joined = _log_ids(part1) + _log_ids(part2)
    assert len(joined) == len(set(joined)), "no duplicates"
    assert joined == _log_ids(full), "no gaps, in order"
    posters = [e for e in part1 + part2 if e.event == "poster_completed"]
    assert sorted(e.data["entity_id"] for e in posters) == ["e0", "e1", "e2", "e3"]
    # Having seen the end, a reconnect gets only what was logged later, then is told to stop
    # (204: EventSource does not come back).
    cursor = _log_ids(part2)[-1]
    for _ in range(5):
        again = Stream(cloud, path, {"Last-Event-ID": cursor})
        if again.status == 204:
            again.close()
            break
        late = list(again.events())
        again.close()
        assert {e.event for e in late} <= {"connected", "log"}, [e.event for e in late]
        cursor = _log_ids(late)[-1] if _log_ids(late) else cursor
    else:
        raise AssertionError("a client that saw the end never got 204")


def test_a_client_after_the_end_gets_the_snapshot_the_log_and_the_end_at_once(cloud: Any, template_id: str) -> None:
    job = _batch(cloud, template_id, 2)
    _final(job["job_id"])
    started = time.monotonic()
    stream = Stream(cloud, job["sse_endpoint"])
    events = list(stream.events())
    stream.close()
    assert time.monotonic() - started < 5
    names = [e.event for e in events]
    assert names[:2] == ["connected", "status"] and names[-1] == "job_completed", names
    assert names.count("job_completed") == 1 and names.count("poster_completed") == 2, names
    assert events[1].data["snapshot"] is True and events[1].data["final"] is True
    assert (events[-1].data["success_count"], events[-1].data["total_count"]) == (2, 2)
    assert events[-1].data["archive_url"], "the results archive, presigned"
    # A Last-Event-ID that is not one of ours: the snapshot and the end, at once.
    stream = Stream(cloud, job["sse_endpoint"], {"Last-Event-ID": "not-an-id"})
    odd = list(stream.events())
    stream.close()
    assert [e.event for e in odd] == ["connected", "status", "job_completed"]
    assert odd[1].data["snapshot"] is True


def test_unknown_jobs_and_bad_credentials_are_refused(cloud: Any, template_id: str) -> None:
    missing = f"job_{uuid.uuid4().hex[:12]}"
    status, body, _ = api(cloud, "GET", f"/api/batch/jobs/{missing}/stream")
    assert status == 404 and body["error"]["code"] == "job_not_found"
    status, body, _ = api(cloud, "GET", f"/api/templates/job/{missing}/stream?token={tokens.job_token(missing)}")
    assert status == 404
    job = _batch(cloud, template_id, 1)
    stream = f"/api/templates/job/{job['job_id']}/stream"
    status, body, _ = api(cloud, "GET", f"{stream}?token=")
    assert status == 401 and body["error"]["code"] == "unauthenticated"
    status, body, _ = api(cloud, "GET", f"{stream}?token=not-the-token")
    assert status == 403 and body["error"]["code"] == "invalid_token"
    status, body, _ = api(cloud, "GET", f"{stream}?token={tokens.job_token(missing)}")  # another job's token
    assert status == 403
    # Another tenant's API key: the job does not exist for it.
    status, body, _ = api(cloud, "GET", stream, headers={"x-api-key": "someone-else"})
    assert status == 404
    _final(job["job_id"])


def test_a_client_leaving_mid_stream_ends_the_stream(cloud: Any, template_id: str) -> None:
    # A job waiting for its upload stays open: its stream only sends heartbeats.
    status, up, _ = api(cloud, "POST", "/api/uploads", {"kind": "poster", "filename": "rows.csv",
                                                        "template_id": template_id})
    assert status == 201, up
    before = sse.active_streams()
    stream = Stream(cloud, up["sse_endpoint"])
    events = stream.events()
    assert [next(events).event, next(events).event] == ["connected", "status"]
    wait_for(lambda: sse.active_streams() == before + 1, timeout=5, what="the stream to run")
    stream.close()
    wait_for(lambda: sse.active_streams() == before, timeout=5, interval=0.05,
             what="the server-side stream to end after its client left")


def test_a_job_that_fails_ends_its_stream_with_job_failed(cloud: Any, template_id: str) -> None:
    import io
    import urllib.request
    import zipfile

    status, up, _ = api(cloud, "POST", "/api/uploads", {"filename": "data.csv", "template_id": template_id})
    assert status == 201, up
    stream = Stream(cloud, up["sse_endpoint"])
    opening = stream.events()
    assert next(opening).event == "connected"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # not a CSV: the job fails as a whole
        zf.writestr("sheet.xml", "<x/>")
    req = urllib.request.Request(up["upload_url"], data=buf.getvalue(), method=up["method"], headers=up["headers"])
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200
    rest = list(opening)
    stream.close()
    names = [e.event for e in rest]
    assert names[-1] == "job_failed" and "job_completed" not in names, names
    assert rest[-1].data["job_id"] == up["job_id"] and rest[-1].data["error"].startswith("upload refused")
    assert [e.data["final"] for e in rest if e.event == "status"][-1] is True


def test_a_crop_job_streams_item_completed_not_poster_completed(cloud: Any) -> None:
    import io
    import urllib.request
    import zipfile

    status, up, _ = api(cloud, "POST", "/api/uploads", {"kind": "crop", "filename": "photos.zip"})
    assert status == 201, up
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("notes.txt", "not a photo")
    req = urllib.request.Request(up["upload_url"], data=buf.getvalue(), method=up["method"], headers=up["headers"])
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200
    _final(up["job_id"])
    stream = Stream(cloud, up["sse_endpoint"])
    events = list(stream.events())
    stream.close()
    names = [e.event for e in events]
    assert "poster_completed" not in names and names[-1] in ("job_completed", "job_failed"), names
    (item,) = [e.data for e in events if e.event == "item_completed"]
    assert item["job_id"] == up["job_id"] and item["success"] is False and item["error_code"], item
