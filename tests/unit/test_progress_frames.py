"""Stream records → frames: parsing, event shapes, ordering and the once-only job end."""

from __future__ import annotations

from typing import Any

from posterflow.progress import events, stream
from posterflow.progress.broadcast import ITEMS_PER_FRAME, build_frames
from tests.unit.test_progress_coalesce import Clock, MemoryStore, _gate


def _ddb(values: dict[str, Any]) -> dict[str, Any]:
    from posterflow.jobs import _ddb as d

    return d.to_item(values)


def record(name: str, pk: str, sk: str, new: dict[str, Any] | None,
           old: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"Keys": {"PK": {"S": pk}, "SK": {"S": sk}}}
    if new is not None:
        body["NewImage"] = _ddb({"PK": pk, "SK": sk, **new})
    if old is not None:
        body["OldImage"] = _ddb({"PK": pk, "SK": sk, **old})
    return {"eventName": name, "dynamodb": body}


def job(processed: int, status: str = "processing", **extra: Any) -> dict[str, Any]:
    return {"job_id": "j1", "kind": "poster", "status": status, "total": 10, "processed": processed,
            "succeeded": processed, "failed": 0, "finalize_round": 0, "created_at": "2026-01-01T00:00:00.000000Z",
            "started_at": "2026-01-01T00:00:00.000000Z", "last_progress_at": 1767225600.0 + processed,
            "expires_at": 2000000000, **extra}


def meta(processed: int, old_processed: int, status: str = "processing", old_status: str = "processing",
         **extra: Any) -> dict[str, Any]:
    return record("MODIFY", "JOB#j1", "META", job(processed, status, **extra), job(old_processed, old_status))


def item(n: int, status: str = "succeeded", **extra: Any) -> dict[str, Any]:
    new = {"job_id": "j1", "item_id": n, "entity_id": f"e{n}", "status": status, "output_key": f"outputs/j1/{n}.jpg",
           "timings": {"total_ms": 12.6}, **extra}
    return record("MODIFY", "JOB#j1", f"ITEM#{n:06d}", new, {**new, "status": "pending"})


def _frames(records: list[dict[str, Any]], store: MemoryStore | None = None) -> list[dict[str, Any]]:
    store = store or MemoryStore()
    (changes,) = stream.parse(records)
    return [f.body for f in build_frames(changes, _gate(store, Clock()), lambda key: f"https://s3/{key}")]


def test_progress_fields_rate_and_eta() -> None:
    frame = events.progress(job(4))
    assert (frame["processed"], frame["total"], frame["percent"], frame["items_per_s"], frame["eta_s"]) == (
        4, 10, 40.0, 1.0, 6.0)
    assert (frame["processed_items"], frame["success_count"], frame["failure_count"]) == (4, 4, 0)
    assert events.progress(job(0))["eta_s"] is None
    assert events.percent({"total": 0, "processed": 0}) == 100.0
    assert events.percent({"total": None}) == 0.0


def test_a_batch_becomes_items_then_one_progress_frame() -> None:
    records = []
    for n in range(1, 4):
        records += [item(n), meta(n, n - 1)]
    frames = _frames(records)
    assert [f["event"] for f in frames] == ["item_completed", "poster_completed", "progress"]
    assert [i["entity_id"] for i in frames[0]["items"]] == ["e1", "e2", "e3"]
    assert frames[0]["items"][0]["poster_url"] == "https://s3/outputs/j1/1.jpg"
    assert frames[0]["items"][0]["generation_time_ms"] == 13
    assert frames[1]["entity_id"] == "e3" and frames[1]["success"] is True
    assert frames[2]["processed"] == 3


def test_items_are_split_into_bounded_frames_and_failures_carry_errors() -> None:
    records = [item(n) for n in range(ITEMS_PER_FRAME + 5)] + [item(99, "failed", error="bad row")]
    frames = _frames(records)
    batches = [f for f in frames if f["event"] == "item_completed"]
    assert [f["count"] for f in batches] == [ITEMS_PER_FRAME, 6]
    failed = batches[-1]["items"][-1]
    assert failed["success"] is False and failed["error"] == "bad row" and failed["status"] == "failed"


def test_crop_jobs_get_no_poster_alias() -> None:
    records = [item(1), record("MODIFY", "JOB#j1", "META", job(1, kind="crop"), job(0))]
    assert [f["event"] for f in _frames(records)] == ["item_completed", "progress"]


def test_completion_frames_end_with_one_job_completed() -> None:
    store = MemoryStore()
    done = meta(10, 10, status="completed", old_status="processing", archive_key="archives/j1.zip",
                completed_at="2026-01-01T00:00:20.000000Z")
    frames = _frames([done], store)
    assert [f["event"] for f in frames] == ["progress", "status", "job_completed"]
    end = frames[-1]
    assert end["success_count"] == 10 and end["total_count"] == 10 and end["status"] == "completed"
    assert end["archive_url"] == "https://s3/archives/j1.zip" and end["duration_s"] == 20.0
    # The same record again (a retried stream batch): no second announcement.
    assert [f["event"] for f in _frames([done], store)] == ["progress", "status"]
    # Later writes to a completed job (no status change) add no progress after the end.
    assert _frames([meta(10, 10, status="completed", old_status="completed")], store) == []


def test_job_completed_of_a_merge_pdf_job_carries_its_merged_pdf_links() -> None:
    parts = [{"part": 2, "key": "archives/default/j1/merged-002.pdf", "pages": 4},
             {"part": 1, "key": "archives/default/j1/merged-001.pdf", "pages": 5}]
    merged = {"merge_pdf": {"requested": True}, "merged_pdf_r0": {"done": True, "parts": parts, "pages": 9}}
    done = meta(10, 10, status="completed", old_status="processing", archive_key="archives/j1.zip", extra=merged)
    end = _frames([done])[-1]
    assert end["event"] == "job_completed" and end["merged_pdf_url"] is None
    assert end["merged_pdf_urls"] == ["https://s3/archives/default/j1/merged-001.pdf",
                                      "https://s3/archives/default/j1/merged-002.pdf"]
    one = {**merged, "merged_pdf_r0": {"done": True, "parts": parts[1:]}}
    end = _frames([meta(10, 10, status="completed", old_status="processing", extra=one)])[-1]
    assert end["merged_pdf_url"] == end["merged_pdf_urls"][0] == "https://s3/archives/default/j1/merged-001.pdf"
    # Another round's parts are not this round's; a job without merge_pdf has no such fields.
    other = meta(10, 10, status="completed", old_status="processing", finalize_round=1, extra=merged)
    assert _frames([other])[-1]["merged_pdf_urls"] == []
    plain = _frames([meta(10, 10, status="completed", old_status="processing", extra={"archive_r0": {"files": 1}})])
    assert "merged_pdf_urls" not in plain[-1] and "merged_pdf_url" not in plain[-1]


def test_failed_job_gets_job_failed_and_cancelled_only_a_status() -> None:
    failed = _frames([meta(3, 3, status="failed", old_status="processing", error="unreadable input")])
    assert [f["event"] for f in failed] == ["progress", "status", "job_failed"]
    assert failed[-1]["error"] == "unreadable input"
    cancelled = _frames([meta(3, 3, status="cancelled", old_status="processing")])
    assert [f["event"] for f in cancelled] == ["progress", "status"]
    assert cancelled[-1]["final"] is True


def test_status_logs_and_connections_are_parsed_others_skipped() -> None:
    log = record("INSERT", "JOB#j1", "LOG#2026#1", {"job_id": "j1", "level": "INFO", "message": "queued 3"})
    started = meta(1, 0, status="processing", old_status="queued")
    conn = record("INSERT", "CONN#c1", "META", {"connection_id": "c1", "job_id": "j1", "created_at": 5.0,
                                                 "snapshot": {"processed": 1}})
    skipped = [
        record("MODIFY", "JOB#j1", "INDEX", {"status": "processing"}, {"status": "queued"}),
        record("MODIFY", "JOB#j1", "PROGRESS", {"sent_at": 1.0}, {"sent_at": 0.5}),
        record("INSERT", "TEMPLATE#x", "V#000001", {"name": "x"}),
        record("REMOVE", "JOB#j1", "META", None, job(1)),
        record("MODIFY", "JOB#j1", "ITEM#000001", {"status": "pending"}, {"status": "failed"}),
        {"eventName": "INSERT", "dynamodb": {}},
    ]
    (changes,) = stream.parse([log, started, conn, *skipped])
    assert [s.previous for s in changes.statuses] == ["queued"]
    assert [raw["message"] for raw in changes.logs] == ["queued 3"]
    assert [(g.connection_id, g.snapshot) for g in changes.greetings] == [("c1", {"processed": 1})]
    assert changes.items == []
    frames = [f.body["event"] for f in build_frames(changes, _gate(MemoryStore(), Clock()), None)]
    assert frames == ["status", "log", "progress"]


def test_frames_carry_their_order_for_the_connection_floor() -> None:
    (changes,) = stream.parse([item(1), meta(7, 6)])
    built = build_frames(changes, _gate(MemoryStore(), Clock()), None)
    assert [f.order for f in built] == [None, None, (0, 7)]


def test_error_and_heartbeat_shapes() -> None:
    assert events.error("job_not_found", "nope", job_id="x") == {
        "event": "error", "error": {"code": "job_not_found", "message": "nope", "details": {"job_id": "x"}}}
    assert events.heartbeat(["a"])["job_ids"] == ["a"]
