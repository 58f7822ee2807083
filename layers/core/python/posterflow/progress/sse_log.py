"""The SSE frame log: every job's progress frames as ordered, durable records, so a Server-Sent
Events stream can replay what a client missed (``Last-Event-ID``).

The progress function (:mod:`posterflow.progress.broadcast`) appends, for each DynamoDB stream
record that makes frames, one record ``JOB#<id>/EVT#<sequence number, 40 digits>`` holding that
record's frames, each in a fixed *slot* (so a frame's id, ``<sequence number>.<slot>``, is the
same however often or in whatever batch the stream record is delivered: a redelivery rewrites
the same records, never adds new ones). After a batch's records are written it raises the
job's head, ``JOB#<id>/EVT$HEAD`` (only upwards). A reader trusts nothing above the head:
BatchWriteItem writes in no particular order, and the head is written only after every record
below it, so a strongly consistent read that sees the head sees everything under it. One
descending Query reads the head first and then the records after the reader's cursor.

Frames are stored without presigned URLs (they expire); the reader signs output and archive
links when it sends them. Records expire with the job (its TTL). The stream handler ignores
``EVT`` records (:mod:`posterflow.progress.stream` only reads ``META``, ``ITEM#`` and
``LOG#``), and job listings only read ``ITEM#`` and ``LOG#`` ranges.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from posterflow.jobs import _ddb as d
from posterflow.progress import events
from posterflow.progress.stream import JobChanges

EVT_PREFIX = "EVT#"
HEAD_SK = "EVT$HEAD"  # '$' sorts after '#': above every EVT# record of the job
SEQ_WIDTH = 40  # DynamoDB stream sequence numbers have at most 40 digits
PAGE = 100
_BATCH = 25

# Slots: the place of a frame within its stream record's entry (fixed per kind of frame).
SLOT_STATUS = 0
SLOT_PROGRESS = 1
SLOT_FINAL_STATUS = 2
SLOT_ENDED = 3
SLOT_ITEM = 0
SLOT_POSTER = 1
SLOT_LOG = 0

# Hidden fields of stored frames: S3 keys the reader presigns (and removes) when sending.
OUTPUT_KEY = "_output_key"
ARCHIVE_KEY = "_archive_key"
MERGED_PDF_KEYS = "_merged_pdf_keys"

_ID = re.compile(r"^([0-9]{1,40})\.([0-9]{1,2})$")  # ASCII digits only


@dataclass(frozen=True, order=True)
class Cursor:
    """A position in a job's frame log: after frame ``slot`` of record ``seq``. ``Cursor.START``
    is before everything."""

    seq: int
    slot: int

    @property
    def event_id(self) -> str:
        return f"{self.seq}.{self.slot}"

    @property
    def sort_key(self) -> str:
        return f"{EVT_PREFIX}{self.seq:0{SEQ_WIDTH}d}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        """A ``Last-Event-ID``; None when absent or not one of ours."""
        if not text:
            return None
        m = _ID.match(text.strip())
        return cls(int(m.group(1)), int(m.group(2))) if m else None


START = Cursor(0, 0)


@dataclass(frozen=True)
class Frame:
    cursor: Cursor
    body: dict[str, Any]

    @property
    def event(self) -> str:
        return str(self.body.get("event") or "message")


@dataclass
class Entry:
    """One stream record's frames, by slot."""

    seq: int
    frames: dict[int, dict[str, Any]] = field(default_factory=dict)

    def sorted(self) -> list[Frame]:
        return [Frame(Cursor(self.seq, slot), body) for slot, body in sorted(self.frames.items())]


def _seq(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= SEQ_WIDTH else None


def _item_frames(job_id: str, raw: Mapping[str, Any], kind: str | None) -> dict[int, dict[str, Any]]:
    """One finished item, one frame: a poster's ``poster_completed`` with the seeds' fields
    (``job_id``, ``poster_url``, ``entity_id``, ``success``), a crop's ``item_completed`` (``url``),
    and the item's own fields at the top level (the WebSocket's batched ``items`` list and its
    second alias would repeat every link)."""
    item = events.item(raw, None)
    if raw.get("output_key"):
        item[OUTPUT_KEY] = raw.get("output_key")
    if kind == "crop":
        item.pop("poster_url", None)
        return {SLOT_ITEM: {"event": "item_completed", "job_id": job_id, "count": 1, **item}}
    # Posters: only the seeds' name and link (a presigned link is ~1 KB; one per frame).
    item.pop("url", None)
    return {SLOT_POSTER: {"event": "poster_completed", "job_id": job_id, "count": 1, **item}}


def _ended(job: Mapping[str, Any]) -> dict[str, Any] | None:
    state = job.get("status")
    if state in events.COMPLETED_STATUSES:
        body = events.job_completed(job, None)
        if job.get("archive_key"):
            body[ARCHIVE_KEY] = job.get("archive_key")
        merged = events.merged_pdf_keys(job)
        if merged is not None:
            body[MERGED_PDF_KEYS] = merged
        return body
    if state == "failed":
        return events.job_failed(job)
    return None


def entries_of(changes: JobChanges) -> list[Entry]:
    """The frame-log entries one job's changes in a stream batch make, deterministic in the
    records alone (a redelivered batch makes the same entries)."""
    job_id = changes.job_id
    kind = changes.job.get("kind") if changes.job else None
    by_seq: dict[int, Entry] = {}

    def entry(seq_text: str) -> Entry | None:
        seq = _seq(seq_text)
        if seq is None:
            return None
        return by_seq.setdefault(seq, Entry(seq))

    for status_change in changes.statuses:
        e = entry(status_change.seq)
        if e is None:
            continue
        job = status_change.job
        if job.get("status") in events.FINAL_STATUSES:
            e.frames[SLOT_FINAL_STATUS] = events.status(job, status_change.previous)
            ended = _ended(job)
            if ended is not None:
                e.frames[SLOT_ENDED] = ended
        else:
            e.frames[SLOT_STATUS] = events.status(job, status_change.previous)
    for raw, seq_text in zip(changes.logs, changes.log_seqs, strict=False):
        e = entry(seq_text)
        if e is not None:
            e.frames[SLOT_LOG] = events.log(raw)
    for raw, seq_text in zip(changes.items, changes.item_seqs, strict=False):
        e = entry(seq_text)
        if e is not None:
            e.frames.update(_item_frames(job_id, raw, kind))
    latest = changes.job
    if latest is not None and changes.job_seq:
        # One progress frame per job and batch: from its latest image while it runs; when it
        # ended in this batch, from the ending image, in the entry of the end and before it (a
        # small job whose every write lands in one batch still shows its final counters; later
        # writes to an ended job — archive, mail — make none).
        endings = [s for s in changes.statuses if s.job.get("status") in events.FINAL_STATUSES]
        at: tuple[str, Mapping[str, Any]] | None = None
        if latest.get("status") not in events.FINAL_STATUSES:
            at = (changes.job_seq, latest)
        elif endings:
            at = (endings[-1].seq, endings[-1].job)
        if at is not None:
            e = entry(at[0])
            if e is not None:
                body = events.progress(at[1], current_entity=events.current_entity(changes.items))
                body.pop("ts", None)  # deterministic: a redelivery rewrites the same record
                e.frames[SLOT_PROGRESS] = body
    return [by_seq[s] for s in sorted(by_seq) if by_seq[s].frames]


def _expires(changes: JobChanges) -> int | None:
    job = changes.job or (changes.statuses[-1].job if changes.statuses else None)
    value = (job or {}).get(d.spec().ttl_attribute)
    return int(value) if isinstance(value, int | float) else None


def append(changes: JobChanges, *, expires_at: int | None = None, retention_s: int | None = None) -> int:
    """Write the entries of one job's changes, then raise its head; how many entries."""
    entries = entries_of(changes)
    if not entries:
        return 0
    t = d.spec()
    expires = expires_at or _expires(changes) or int(time.time()) + (retention_s or 30 * 86400)
    pk = d.job_pk(changes.job_id)
    requests = [{"PutRequest": {"Item": d.to_item({
        t.partition_key: pk, t.sort_key: Cursor(e.seq, 0).sort_key, "entity": "sse_frames",
        "frames": {str(slot): body for slot, body in e.frames.items()}, t.ttl_attribute: expires,
    })}} for e in entries]
    for start in range(0, len(requests), _BATCH):
        _batch_write(requests[start:start + _BATCH])
    head = f"{entries[-1].seq:0{SEQ_WIDTH}d}"
    update = "SET #h = :h, #e = :e, #ent = :ent"
    values: dict[str, Any] = {":h": {"S": head}, ":e": {"N": str(expires)}, ":ent": {"S": "sse_head"}}
    ends = [e for e in entries if SLOT_FINAL_STATUS in e.frames]
    if ends:
        # Where the job's latest end is: a reader whose client is past it closes at once.
        update += ", end_seq = :es, end_round = :er"
        values[":es"] = {"S": f"{ends[-1].seq:0{SEQ_WIDTH}d}"}
        values[":er"] = {"N": str(int(ends[-1].frames[SLOT_FINAL_STATUS].get("round") or 0))}
    try:
        d.ddb().update_item(
            TableName=d.table(), Key=d.key(pk, HEAD_SK),
            UpdateExpression=update,
            ConditionExpression="attribute_not_exists(#h) OR #h < :h",
            ExpressionAttributeNames={"#h": "head", "#e": t.ttl_attribute, "#ent": "entity"},
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if not d.is_conditional_failure(exc):  # a redelivery of an older batch: head is higher already
            raise
    return len(entries)


def _batch_write(requests: list[dict[str, Any]]) -> None:
    pending: dict[str, Any] = {d.table(): requests}
    for attempt in range(12):
        resp = d.ddb().batch_write_item(RequestItems=pending)
        pending = resp.get("UnprocessedItems") or {}
        if not pending:
            return
        time.sleep(min(1.0, 0.02 * 2 ** attempt))
    raise RuntimeError("BatchWriteItem kept returning unprocessed items")


def _entry_of(raw: Mapping[str, Any]) -> Entry | None:
    rec = d.from_item(raw)
    sk = str(rec.get(d.spec().sort_key, ""))
    seq = _seq(sk[len(EVT_PREFIX):]) if sk.startswith(EVT_PREFIX) else None
    if seq is None:
        return None
    frames = rec.get("frames") or {}
    return Entry(seq, {int(slot): dict(body) for slot, body in frames.items() if str(slot).isdigit()})


@dataclass
class Reader:
    """Reads one job's log after a cursor: one Query per :meth:`poll` while it keeps up."""

    job_id: str
    queries: int = 0
    # The latest end the head records (stream sequence number, round), as of the last read.
    end: tuple[int, int] | None = None
    _target: int | None = None  # catching up: the head seen by the last descending read

    def _query(self, low: str, high: str, *, forward: bool, limit: int,
               start: Mapping[str, Any] | None = None) -> dict[str, Any]:
        t = d.spec()
        kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
        self.queries += 1
        resp: dict[str, Any] = d.ddb().query(
            TableName=d.table(),
            KeyConditionExpression="#pk = :pk AND #sk BETWEEN :lo AND :hi",
            ExpressionAttributeNames={"#pk": t.partition_key, "#sk": t.sort_key},
            ExpressionAttributeValues={":pk": {"S": d.job_pk(self.job_id)}, ":lo": {"S": low}, ":hi": {"S": high}},
            ScanIndexForward=forward, ConsistentRead=True, Limit=limit, **kwargs)
        return resp

    def poll(self, after: Cursor) -> tuple[list[Entry], bool]:
        """Entries from ``after``'s record on (its own record included, if it still exists),
        oldest first, and whether there may be more right away (catching up)."""
        low = after.sort_key if after.seq else EVT_PREFIX
        if self._target is None:
            resp = self._query(low, HEAD_SK, forward=False, limit=PAGE)
            items = list(resp.get("Items", []))
            if not items or d.from_item(items[0]).get(d.spec().sort_key) != HEAD_SK:
                return [], False
            head_rec = d.from_item(items[0])
            head = _seq(str(head_rec.get("head", "")))
            if head is None:
                return [], False
            end_seq = _seq(str(head_rec.get("end_seq", "")))
            if end_seq is not None:
                self.end = (end_seq, int(head_rec.get("end_round") or 0))
            entries = [e for e in map(_entry_of, items[1:]) if e is not None and e.seq <= head]
            if "LastEvaluatedKey" not in resp:
                return sorted(entries, key=lambda e: e.seq), False
            self._target = head  # more than a page behind: read forward up to this head
        target = f"{EVT_PREFIX}{self._target:0{SEQ_WIDTH}d}"
        resp = self._query(low, target, forward=True, limit=PAGE)
        entries = [e for e in map(_entry_of, resp.get("Items", [])) if e is not None]
        if "LastEvaluatedKey" not in resp:
            self._target = None
            return entries, False
        return entries, True


def presign_frame(body: Mapping[str, Any], presign: Callable[[str], str] | None) -> dict[str, Any]:
    """A stored frame as sent: hidden S3 keys turned into links."""
    out = dict(body)
    key = out.pop(OUTPUT_KEY, None)
    if key and presign:
        link = presign(str(key))
        for name in ("url", "poster_url"):
            if name in out:
                out[name] = link
    archive = out.pop(ARCHIVE_KEY, None)
    if "archive_url" in out or archive:
        out["archive_url"] = presign(str(archive)) if archive and presign else out.get("archive_url")
    merged = out.pop(MERGED_PDF_KEYS, None)
    if isinstance(merged, list):
        out.update(events.merged_pdf_fields([str(k) for k in merged], presign))
    items = out.get("items")
    if isinstance(items, list):
        signed = []
        for raw in items:
            item = dict(raw)
            key = item.pop(OUTPUT_KEY, None)
            if key and presign:
                item["url"] = item["poster_url"] = presign(str(key))
            signed.append(item)
        out["items"] = signed
        if signed:
            out["poster_url"] = signed[-1].get("poster_url")
    return out


def frames_after(entries: list[Entry], after: Cursor) -> Iterator[Frame]:
    for e in entries:
        for frame in e.sorted():
            if frame.cursor > after:
                yield frame
