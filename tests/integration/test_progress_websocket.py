"""Live progress over the local WebSocket API (issue 7): a 200-item batch end to end,
connection cleanup, refused connects, error frames."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from posterflow import tokens
from posterflow.progress import connections
from tests.integration.helpers import api, wait_for

HTML = "<html><body style='margin:0;background:#fff'><b>{{ name }}</b></body></html>"
FINAL = {"completed", "completed_with_errors", "failed", "cancelled"}


def _template(cloud: Any) -> str:
    section = f"progress-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": "Progress", "html_content": HTML, "set_as_active": True,
        "width": 200, "height": 100, "format": "jpeg"})
    assert status == 201, body
    return str(body["template_id"])


def _batch(cloud: Any, n: int) -> dict[str, Any]:
    items = [{"entity_id": f"e{i}", "name": f"Name {i}"} for i in range(n)]
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {
        "template_id": _template(cloud), "items": items, "width": 200, "height": 100, "format": "jpeg"})
    assert status == 202, body
    return dict(body)


def _frames_until(ws: ClientConnection, done: Any, timeout: float = 180.0) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            frames.append(json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic()))))
        except TimeoutError:
            break
        if done(frames):
            return frames
    raise AssertionError(f"no end after {len(frames)} frames: {[f['event'] for f in frames[-10:]]}")


def _quiet(ws: ClientConnection, seconds: float) -> list[dict[str, Any]]:
    """Frames that still arrive within ``seconds`` (after the end nothing but logs may)."""
    extra: list[dict[str, Any]] = []
    try:
        while True:
            extra.append(json.loads(ws.recv(timeout=seconds)))
    except TimeoutError:
        return extra


def test_200_item_batch_streams_coalesced_progress_to_one_job_completed(cloud: Any) -> None:
    job = _batch(cloud, 200)
    with connect(job["websocket_url"]) as ws:
        frames = _frames_until(ws, lambda fs: fs[-1]["event"] in ("job_completed", "job_failed"))
        frames += _quiet(ws, 2.0)

    names = [f["event"] for f in frames]
    assert names[0] == "connected" and frames[0]["job_id"] == job["job_id"]
    assert names.count("job_completed") == 1 and "job_failed" not in names
    progress = [f for f in frames if f["event"] == "progress"]
    assert 0 < len(progress) < 200
    counts = [frames[0]["processed"]] + [f["processed"] for f in progress]
    assert counts == sorted(counts), counts
    last = progress[-1]
    assert (last["processed"], last["total"], last["succeeded"], last["failed"]) == (200, 200, 200, 0)
    assert last["percent"] == 100.0 and last["eta_s"] == 0.0 and last["items_per_s"] > 0
    # Nothing but logs after the end: the final counters are the last word.
    end = names.index("job_completed")
    assert progress[-1] is frames[max(i for i, n in enumerate(names) if n == "progress")]
    assert all(n == "log" for n in names[end + 1:]), names[end + 1:]
    done = frames[end]
    assert done["status"] == "completed" and done["success_count"] == 200 and done["total_count"] == 200
    assert done["processed"] == done["total"] == 200

    # Every item that finished after this client was greeted was announced once, in batched
    # frames, with its poster URL; the ones before are in the greeting's counters (the batch
    # starts before the client connects, so under load some items can beat the greeting).
    items = [i for f in frames if f["event"] == "item_completed" for i in f["items"]]
    announced = [i["entity_id"] for i in items]
    assert len(announced) == len(set(announced)) and set(announced) <= {f"e{i}" for i in range(200)}
    assert len(announced) >= 200 - frames[0]["processed"]
    assert all(i["success"] and i["poster_url"] for i in items)
    assert names.count("item_completed") < 200
    seed = [i for f in frames if f["event"] == "poster_completed" for i in f["items"]]
    assert sorted(i["entity_id"] for i in seed) == sorted(announced)


def test_client_that_leaves_mid_job_is_cleaned_up(cloud: Any) -> None:
    job = _batch(cloud, 60)
    progress_fn = cloud.runtime.get(cloud.spec.function("progress").name)
    errors_before = progress_fn.errors
    with connect(job["websocket_url"]) as ws:
        first = json.loads(ws.recv(timeout=30))
        assert first["event"] == "connected" and first["processed"] < 60
        connection_id = first["connection_id"]
        assert job["job_id"] in connections.subscribed_jobs(connection_id)
    # $disconnect removes it (a frame posted to it meanwhile is a 410 and removes it as well).
    wait_for(lambda: not connections.subscribed_jobs(connection_id), timeout=30, what="connection removed")
    wait_for(lambda: api(cloud, "GET", f"/api/jobs/{job['job_id']}?limit=1")[1]["processed_items"] == 60,
             timeout=180, what="job finished without the client")
    # A second client still gets greeted with the final counters: the broadcaster is healthy.
    with connect(job["websocket_url"]) as ws2:
        hello = json.loads(ws2.recv(timeout=30))
        assert hello["event"] == "connected" and hello["processed"] == 60
    assert progress_fn.errors == errors_before


def test_gone_connection_is_removed_on_410(cloud: Any) -> None:
    job = _batch(cloud, 1)
    ghost = f"ghost{uuid.uuid4().hex[:8]}"
    # A connection whose $disconnect never arrived (API Gateway drops it when a client vanishes).
    connections.add_connection(ghost, job["job_id"], {"round": 0, "processed": 0})
    wait_for(lambda: not connections.subscribed_jobs(ghost), timeout=120, what="ghost connection removed on 410")


@pytest.fixture(scope="module")
def two_jobs(cloud: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    return _batch(cloud, 1), _batch(cloud, 1)


@pytest.mark.parametrize("query", [
    "",
    "?job_id={job_id}",
    "?token={token}",
    "?job_id={job_id}&token=",
    "?job_id={job_id}&token=not-the-token",
    "?job_id={job_id}&token={other_token}",
    "?job_id={other_id}&token={token}",
    "?job_id={unknown}&token={unknown_token}",
])
def test_connect_refused_without_the_jobs_token(two_jobs: tuple[dict[str, Any], dict[str, Any]], query: str) -> None:
    job, other = two_jobs
    unknown = uuid.uuid4().hex
    url = job["websocket_url"].split("?")[0] + query.format(
        job_id=job["job_id"], token=job["token"], other_id=other["job_id"], other_token=other["token"],
        unknown=unknown, unknown_token=tokens.job_token(unknown))
    with pytest.raises(InvalidStatus) as exc, connect(url):
        pass
    assert exc.value.response.status_code == 403
    # The same socket URL with the right pair is accepted.
    with connect(job["websocket_url"]) as ws:
        assert json.loads(ws.recv(timeout=30))["event"] == "connected"


def _next(ws: ClientConnection, event: str) -> dict[str, Any]:
    frames = _frames_until(ws, lambda fs: fs[-1]["event"] == event, timeout=30)
    return frames[-1]


def test_bad_messages_get_error_frames_and_keep_the_connection(cloud: Any) -> None:
    job = _batch(cloud, 2)
    other = _batch(cloud, 2)
    missing = uuid.uuid4().hex
    with connect(job["websocket_url"]) as ws:
        for message, code in [
            ("not json", "malformed_message"),
            ("[1, 2]", "malformed_message"),
            (json.dumps({"action": "dance"}), "unknown_action"),
            (json.dumps({"nothing": 1}), "unknown_action"),
            (json.dumps({"action": "subscribe"}), "invalid_subscribe"),
            (json.dumps({"action": "subscribe", "job_id": other["job_id"], "token": job["token"]}), "forbidden"),
            (json.dumps({"action": "subscribe", "job_id": missing, "token": tokens.job_token(missing)}),
             "job_not_found"),
        ]:
            ws.send(message)
            assert _next(ws, "error")["error"]["code"] == code, message

        ws.send(json.dumps({"action": "ping"}))
        assert _next(ws, "heartbeat")["job_ids"] == [job["job_id"]]
        # Still open and useful: subscribe to a second job and follow it to its end.
        ws.send(json.dumps({"action": "subscribe", "job_id": other["job_id"], "token": other["token"]}))
        sub = _next(ws, "subscribed")
        assert sub["job_id"] == other["job_id"] and sub["total"] == 2
        ends: set[str] = set()
        deadline = time.monotonic() + 120
        while ends != {job["job_id"], other["job_id"]} and time.monotonic() < deadline:
            try:
                frame = json.loads(ws.recv(timeout=5))
            except TimeoutError:
                # Jobs that ended before we listened: ask the API instead.
                for j in (job, other):
                    if api(cloud, "GET", f"/api/jobs/{j['job_id']}?limit=1")[1]["status"] in FINAL:
                        ends.add(j["job_id"])
                continue
            if frame["event"] in ("job_completed", "job_failed") or frame.get("status") in FINAL:
                ends.add(frame["job_id"])
        assert ends == {job["job_id"], other["job_id"]}
