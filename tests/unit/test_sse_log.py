"""The SSE frame log's pure parts: frame ids (cursors), the entries a stream batch makes (fixed
slots, deterministic, so a redelivery rewrites the same records), links signed when sent."""

from __future__ import annotations

from typing import Any

from posterflow.progress import sse, sse_log, stream
from posterflow.progress.sse_log import Cursor


def _record(seq: int, sk: str, new: dict[str, Any], old: dict[str, Any] | None = None,
            name: str = "MODIFY") -> dict[str, Any]:
    from posterflow.jobs import _ddb as d

    image: dict[str, Any] = {"Keys": {"PK": {"S": "JOB#j1"}, "SK": {"S": sk}}, "SequenceNumber": str(seq),
                             "NewImage": d.to_item({"PK": "JOB#j1", "SK": sk, **new})}
    if old is not None:
        image["OldImage"] = d.to_item({"PK": "JOB#j1", "SK": sk, **old})
    return {"eventName": name, "dynamodb": image}


JOB = {"job_id": "j1", "kind": "poster", "total": 2, "processed": 1, "succeeded": 1, "status": "processing",
       "finalize_round": 0, "expires_at": 2_000_000_000}


def _batch() -> list[dict[str, Any]]:
    return [
        _record(11, "ITEM#000000", {"status": "succeeded", "entity_id": "e0", "output_key": "outputs/t/j1/0.png"},
                {"status": "pending"}),
        _record(12, "META", JOB, {**JOB, "processed": 0, "succeeded": 0}),
        _record(13, "LOG#1#0", {"job_id": "j1", "level": "INFO", "message": "hi"}, name="INSERT"),
        _record(14, "ITEM#000001", {"status": "failed", "entity_id": "e1", "error": "x", "error_code": "timeout"},
                {"status": "pending"}),
        _record(15, "META", {**JOB, "processed": 2, "failed": 1, "status": "completed_with_errors"},
                {**JOB, "processed": 2, "failed": 1}),
        _record(16, "EVT#0001", {"frames": {}}, name="INSERT"),  # the log's own records are not frames
    ]


def test_cursors_round_trip_and_refuse_what_is_not_an_id() -> None:
    assert Cursor.parse("1100000000017454423045.3") == Cursor(1100000000017454423045, 3)
    assert Cursor.parse(Cursor(7, 1).event_id) == Cursor(7, 1)
    for bad in (None, "", "abc", "1.2.3", "1", "٣.1", "1" * 41 + ".0", "1.123"):
        assert Cursor.parse(bad) is None, bad
    assert Cursor(5, 3) < Cursor(6, 0) < Cursor(6, 1)
    assert Cursor(12, 0).sort_key == "EVT#" + "12".zfill(40)


def test_a_batch_makes_one_entry_per_record_in_stream_order_with_fixed_slots() -> None:
    (changes,) = stream.parse(_batch())
    entries = sse_log.entries_of(changes)
    assert [e.seq for e in entries] == [11, 13, 14, 15]
    by_seq = {e.seq: e for e in entries}
    assert by_seq[11].frames[sse_log.SLOT_POSTER]["event"] == "poster_completed"
    assert by_seq[11].frames[sse_log.SLOT_POSTER][sse_log.OUTPUT_KEY] == "outputs/t/j1/0.png"
    assert by_seq[14].frames[sse_log.SLOT_POSTER]["success"] is False
    assert by_seq[13].frames == {sse_log.SLOT_LOG: by_seq[13].frames[sse_log.SLOT_LOG]}
    end = by_seq[15].frames
    # The latest image's progress, then the final status, then the end, in that order.
    assert sorted(end) == [sse_log.SLOT_PROGRESS, sse_log.SLOT_FINAL_STATUS, sse_log.SLOT_ENDED]
    assert [f.event for f in by_seq[15].sorted()] == ["progress", "status", "job_completed"]
    assert end[sse_log.SLOT_ENDED]["success_count"] == 1 and end[sse_log.SLOT_ENDED]["total_count"] == 2


def test_a_job_ended_and_written_again_in_one_batch_still_shows_its_final_counters() -> None:
    # A small job: its items, its end and finalize's later writes (archive key) in one batch.
    ended = {**JOB, "processed": 2, "failed": 1, "status": "completed_with_errors"}
    records = [*_batch()[:5], _record(17, "META", {**ended, "archive_key": "archives/t/j1/r.zip"}, ended)]
    entries = sse_log.entries_of(stream.parse(records)[0])
    frames = [f for e in entries for f in e.sorted()]
    names = [f.event for f in frames]
    assert names.count("progress") == 1 and names.index("progress") < names.index("job_completed"), names
    progress = next(f for f in frames if f.event == "progress")
    assert progress.body["processed"] == 2, progress.body


def test_a_redelivered_batch_makes_the_same_entries() -> None:
    first = sse_log.entries_of(stream.parse(_batch())[0])
    again = sse_log.entries_of(stream.parse(_batch())[0])
    assert [(e.seq, e.frames) for e in first] == [(e.seq, e.frames) for e in again]
    # Split differently (Lambda bisects a failing batch): no record gets other frames in a slot.
    halves = sse_log.entries_of(stream.parse(_batch()[:2])[0]) + sse_log.entries_of(stream.parse(_batch()[2:])[0])
    whole = {(e.seq, slot): body for e in first for slot, body in e.frames.items()}
    for e in halves:
        for slot, body in e.frames.items():
            if (e.seq, slot) in whole:
                assert whole[(e.seq, slot)] == body


def test_links_are_signed_when_sent_and_hidden_keys_never_leave() -> None:
    (changes,) = stream.parse(_batch())
    entries = {e.seq: e for e in sse_log.entries_of(changes)}
    sent = sse_log.presign_frame(entries[11].frames[sse_log.SLOT_POSTER], lambda key: f"https://signed/{key}")
    assert sent["poster_url"] == "https://signed/outputs/t/j1/0.png" and sse_log.OUTPUT_KEY not in sent
    assert {"job_id", "poster_url", "entity_id", "success"} <= set(sent)
    frames = list(sse_log.frames_after(list(entries.values()), Cursor(13, 0)))
    assert frames[0].cursor == Cursor(14, sse_log.SLOT_POSTER)


def test_frames_are_one_sse_event_each() -> None:
    data = sse.encode("5.1", "log", {"event": "log", "message": "two\nlines"})
    assert data == b'id: 5.1\nevent: log\ndata: {"event":"log","message":"two\\nlines"}\n\n'
    assert sse.route_job_id("/api/batch/jobs/abc_1/stream") == "abc_1"
    assert sse.route_job_id("/api/batch/jobs/abc/stream/x") is None
