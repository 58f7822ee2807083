"""The client's retry policy, errors, pagination, wait and upload, against fake transports
(``httpx.MockTransport``): no local cloud needed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from posterflow_client import (
    Client,
    Conflict,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RetryPolicy,
    ServerError,
    TransportError,
    UploadFailed,
    ValidationFailed,
    WaitTimeout,
)
from posterflow_client.retry import retry_after_s

BASE = "http://pf.test"
Handler = Callable[[httpx.Request], httpx.Response]


def error(status: int, code: str, message: str = "nope", details: Any = None,
          headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message, "details": details}},
                          headers=headers)


JOB = {"success": True, "job_id": "job-1", "total_items": 2, "status_endpoint": "/api/templates/job/job-1",
       "websocket_url": None, "token": "tok"}


class Recorder:
    """A fake API: answers from ``script`` in order (the last one repeats), records requests."""

    def __init__(self, *script: httpx.Response | Exception | Handler) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script[min(len(self.requests), len(self.script)) - 1]
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        return step(request)


def make(recorder: Recorder, *, attempts: int = 4, rand: float = 1.0,
         upload: Handler | None = None) -> tuple[Client, list[float]]:
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=attempts, base_delay_s=0.5, max_delay_s=8.0, sleep=sleeps.append,
                         random=lambda: rand)
    client = Client(BASE, api_key="k-1", retry=policy, transport=httpx.MockTransport(recorder),
                    upload_transport=httpx.MockTransport(upload) if upload else None)
    client._sleep = sleeps.append
    return client, sleeps


def test_5xx_is_retried_with_exponential_backoff_then_succeeds() -> None:
    rec = Recorder(error(503, "unavailable"), error(502, "bad_gateway"), httpx.Response(200, json={"status": "ok"}))
    client, sleeps = make(rec)
    assert client.health() == {"status": "ok"}
    assert len(rec.requests) == 3
    assert sleeps == [0.5, 1.0]  # base * 2**(n-1), full jitter at its top (random() == 1)
    assert rec.requests[0].headers["x-api-key"] == "k-1"


def test_backoff_has_full_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=3.0, random=lambda: 0.25)
    assert [policy.backoff(n) for n in (1, 2, 3, 4, 5)] == [0.125, 0.25, 0.5, 0.75, 0.75]
    import random as real_random

    jittered = RetryPolicy(base_delay_s=1.0, max_delay_s=100.0, random=real_random.Random(7).random)
    delays = [jittered.backoff(4) for _ in range(50)]
    assert all(0 <= d <= 8.0 for d in delays) and len(set(delays)) == 50


def test_attempts_are_bounded_and_the_last_error_is_typed() -> None:
    rec = Recorder(error(500, "internal", "boom", {"id": "x"}))
    client, sleeps = make(rec, attempts=3)
    with pytest.raises(ServerError) as caught:
        client.health()
    assert len(rec.requests) == 3 and len(sleeps) == 2
    assert (caught.value.status, caught.value.code, caught.value.message, caught.value.details) == (
        500, "internal", "boom", {"id": "x"})


def test_retry_after_is_honoured_in_seconds_and_as_a_date() -> None:
    rec = Recorder(error(429, "throttled", headers={"Retry-After": "3"}), httpx.Response(200, json={}))
    client, sleeps = make(rec)
    client.health()
    assert sleeps == [3.0]
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    assert 15 < (retry_after_s(httpx.Response(503, headers={"Retry-After": when})) or 0) <= 20
    assert retry_after_s(httpx.Response(503, headers={"Retry-After": "soon"})) is None
    capped = Recorder(error(503, "x", headers={"Retry-After": "3600"}), httpx.Response(200, json={}))
    client, sleeps = make(capped)
    client.health()
    assert sleeps == [60.0]  # max_retry_after_s


def test_429_exhausted_is_rate_limited() -> None:
    client, _ = make(Recorder(error(429, "throttled")), attempts=2)
    with pytest.raises(RateLimited):
        client.health()


def test_4xx_is_not_retried_and_maps_to_its_class() -> None:
    cases = [(404, "job_not_found", NotFound), (422, "validation_error", ValidationFailed),
             (409, "batch_conflict", Conflict), (413, "too_many_items", PayloadTooLarge)]
    for status, code, cls in cases:
        rec = Recorder(error(status, code, "bad", [{"loc": ["body", "items"]}]))
        client, sleeps = make(rec)
        with pytest.raises(cls) as caught:
            client.job("job-x")
        assert len(rec.requests) == 1 and sleeps == []
        assert (caught.value.status, caught.value.code, caught.value.details) == (
            status, code, [{"loc": ["body", "items"]}])
        assert caught.value.url == f"{BASE}/api/jobs/job-x"


def test_non_json_error_body_still_gives_status_and_text() -> None:
    client, _ = make(Recorder(httpx.Response(404, text="Not Found")))
    with pytest.raises(NotFound) as caught:
        client.job("j")
    assert caught.value.code == "http_404" and caught.value.message == "Not Found"


def test_job_creation_reuses_its_idempotency_key_on_retries() -> None:
    rec = Recorder(httpx.ReadTimeout("lost"), error(409, "idempotency_in_progress"), error(503, "x"),
                   httpx.Response(202, json=JOB))
    client, sleeps = make(rec)
    job = client.generate_batch("t_latest", [{"name": "A"}, {"name": "B"}], name="n", format="jpeg")
    assert job.job_id == "job-1" and job.total_items == 2
    keys = {r.headers["Idempotency-Key"] for r in rec.requests}
    assert len(rec.requests) == 4 and len(keys) == 1 and keys.pop().startswith("pfc-")
    body = json.loads(rec.requests[0].content)
    assert body == {"template_id": "t_latest", "items": [{"name": "A"}, {"name": "B"}], "name": "n", "format": "jpeg"}
    assert len(sleeps) == 3


def test_each_logical_call_gets_its_own_key_unless_given_one() -> None:
    rec = Recorder(httpx.Response(202, json=JOB))
    client, _ = make(rec)
    client.generate_async("t_latest", {"a": 1})
    client.generate_async("t_latest", {"a": 1})
    client.generate_async("t_latest", {"a": 1}, idempotency_key="mine-1")
    keys = [r.headers["Idempotency-Key"] for r in rec.requests]
    assert keys[0] != keys[1] and keys[2] == "mine-1"


def test_other_409s_are_not_retried() -> None:
    rec = Recorder(error(409, "batch_conflict"))
    client, _ = make(rec)
    with pytest.raises(Conflict):
        client.generate_batch("t", [{}])
    assert len(rec.requests) == 1


def test_unsafe_request_is_retried_only_when_it_never_left() -> None:
    template = {"template_id": "s_v1", "section": "s", "version": 1, "name": "n", "placeholders": []}
    rec = Recorder(httpx.ConnectError("refused"), httpx.Response(201, json=template))
    client, _ = make(rec)
    assert client.templates.upload("s", "n", "<p>x</p>").template_id == "s_v1"
    assert len(rec.requests) == 2
    # A read timeout: the upload may have landed; a retry would make a second version.
    rec = Recorder(httpx.ReadTimeout("lost"), httpx.Response(201, json=template))
    client, _ = make(rec)
    with pytest.raises(TransportError, match="ReadTimeout"):
        client.templates.upload("s", "n", "<p>x</p>")
    assert len(rec.requests) == 1
    rec = Recorder(error(503, "x"), httpx.Response(201, json=template))
    client, _ = make(rec)
    with pytest.raises(ServerError):
        client.templates.upload("s", "n", "<p>x</p>")
    assert len(rec.requests) == 1


def test_connection_errors_exhaust_into_transport_error() -> None:
    rec = Recorder(httpx.ConnectError("refused"))
    client, sleeps = make(rec, attempts=3)
    with pytest.raises(TransportError, match="ConnectError"):
        client.job("j")
    assert len(rec.requests) == 3 and len(sleeps) == 2


def test_job_follows_next_cursors() -> None:
    def page(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        n = {None: 0, "c1": 1, "c2": 2}[cursor]
        results = [{"item_id": f"i{n}{k}", "url": f"http://s3/{n}{k}", "status": "completed"} for k in range(2)]
        return httpx.Response(200, json={"job_id": "job-1", "status": "completed", "success_count": 6,
                                         "results": results, "next": {0: "c1", 1: "c2", 2: None}[n],
                                         "a_future_field": n})

    rec = Recorder(page)
    client, _ = make(rec)
    job = client.job("job-1", page_size=2)
    assert [r.item_id for r in job.results] == ["i00", "i01", "i10", "i11", "i20", "i21"]
    assert job.next is None and job.urls[0] == "http://s3/00" and job.model_extra == {"a_future_field": 2}
    assert [r.url.params.get("limit") for r in rec.requests] == ["2", "2", "2"]


def _status(status: str, processed: int, total: int = 3) -> httpx.Response:
    return httpx.Response(200, json={"job_id": "job-1", "status": status, "total_items": total,
                                     "processed_items": processed, "success_count": processed,
                                     "results": [{"item_id": "i0", "url": "http://s3/0"}] if processed else [],
                                     "next": None})


def test_wait_reports_each_change_backs_off_and_returns_the_full_job() -> None:
    rec = Recorder(_status("queued", 0), _status("processing", 1), _status("processing", 1), _status("processing", 1),
                   _status("processing", 3), _status("completed", 3))
    client, sleeps = make(rec)
    seen: list[tuple[str | None, int]] = []
    done = client.wait("job-1", timeout=60, poll_interval=1.0, max_poll_interval=2.0, backoff=1.5,
                       on_progress=lambda j: seen.append((j.status, j.processed_items)))
    assert seen == [("queued", 0), ("processing", 1), ("processing", 3), ("completed", 3)]
    assert sleeps == [1.0, 1.0, 1.5, 2.0, 1.0]  # reset on change, grows while nothing moves, capped
    assert done.status == "completed" and done.is_final and done.urls == ["http://s3/0"]
    assert [r.url.params.get("limit") for r in rec.requests] == ["1"] * 6 + ["1000"]


def test_wait_timeout_names_the_last_status() -> None:
    rec = Recorder(_status("processing", 1))
    client, _ = make(rec)
    client._sleep = lambda s: None
    with pytest.raises(WaitTimeout, match="last status: processing") as caught:
        client.wait("job-1", timeout=0.05, poll_interval=0.001)
    assert caught.value.last_status == "processing" and caught.value.job_id == "job-1"
    assert isinstance(caught.value, TimeoutError)


def test_upload_streams_the_file_to_the_presigned_url_without_the_api_key(tmp_path: Path) -> None:
    csv_path = tmp_path / "my rows (1).csv"
    csv_path.write_bytes(b"name\n" + b"".join(f"Person {i}\n".encode() for i in range(200_000)))
    puts: list[httpx.Request] = []

    def s3(request: httpx.Request) -> httpx.Response:
        request.read()
        puts.append(request)
        return httpx.Response(503) if len(puts) == 1 else httpx.Response(200)

    answer = {**JOB, "kind": "poster", "upload_url": "http://s3.test/bucket/uploads/x?X-Amz-Signature=abc",
              "method": "PUT", "headers": {"Content-Type": "text/csv"}, "key": "uploads/default/job-1/x.csv"}
    rec = Recorder(httpx.Response(201, json=answer))
    client, _ = make(rec, upload=s3)
    job = client.upload_csv(csv_path, "t_latest", format="jpeg")
    assert job.job_id == "job-1" and job.upload_headers == {"Content-Type": "text/csv"}
    created = json.loads(rec.requests[0].content)
    assert created == {"kind": "poster", "template_id": "t_latest", "format": "jpeg", "filename": "my_rows__1_.csv"}
    assert len(puts) == 2  # a 503 from S3 is retried, reopening the file
    for put in puts:
        assert put.method == "PUT" and put.headers["content-type"] == "text/csv"
        assert int(put.headers["content-length"]) == csv_path.stat().st_size and put.content == csv_path.read_bytes()
        assert "x-api-key" not in put.headers and "transfer-encoding" not in put.headers


def test_upload_failure_names_the_job(tmp_path: Path) -> None:
    zip_path = tmp_path / "photos.zip"
    zip_path.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    answer = {**JOB, "upload_url": "http://s3.test/u", "headers": {"Content-Type": "application/zip"}}
    client, _ = make(Recorder(httpx.Response(201, json=answer)), upload=lambda r: httpx.Response(403, text="denied"))
    with pytest.raises(UploadFailed, match="403") as caught:
        client.upload_zip(zip_path)
    assert caught.value.job_id == "job-1" and caught.value.status == 403


def test_missing_upload_file_makes_no_job(tmp_path: Path) -> None:
    rec = Recorder(httpx.Response(201, json=JOB))
    client, _ = make(rec)
    with pytest.raises(FileNotFoundError):
        client.upload_csv(tmp_path / "nope.csv", "t")
    assert rec.requests == []


def test_base_url_forms() -> None:
    for base in ("http://pf.test", "http://pf.test/", "http://pf.test/api", "http://pf.test/api/"):
        rec = Recorder(httpx.Response(200, json={"status": "ok"}))
        Client(base, transport=httpx.MockTransport(rec)).health()
        assert str(rec.requests[0].url) == "http://pf.test/health"
    rec = Recorder(httpx.Response(200, json={"job_id": "a/b", "status": "queued"}))
    Client("https://x.execute-api.test/prod", transport=httpx.MockTransport(rec)).job("a/b")
    assert str(rec.requests[0].url).startswith("https://x.execute-api.test/prod/api/jobs/a%2Fb?")
    assert "x-api-key" not in rec.requests[0].headers  # no key given, none sent
