"""The splitter: one upload (CSV of poster rows, ZIP of photos) → one job with one message per item.

Inputs arrive on the split queue as S3 event notifications (a file put under ``uploads/``)
or as continuation messages the splitter sent itself. The input is read as a stream (CSV) or
by ranged reads of the central directory (ZIP); items are written and queued in chunks, and
when the invocation runs short of time the position is saved on the job and a continuation
message picks up from there — so a 100,000-row CSV or a 1,000,000-entry ZIP never needs one
long invocation, and nothing counts twice (an invocation that finds its first item already
written — a redelivered message — writes every item only if absent).

This module is the run: the SQS messages, the start from an S3 event, the chunk writer and
its checkpoints. Each input kind reads its input into items in its own module
(:mod:`~posterflow.split.csv_input`, :mod:`~posterflow.split.zip_input`,
:mod:`~posterflow.split.manifest_input`) and hands them to the chunk writer; an input refused
as a whole (:class:`SplitFailed`, a CSV or ZIP the reader refuses) fails the job with the reason.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord

from posterflow import aws, jobs, tenancy
from posterflow.formats import csvreader, zipindex
from posterflow.jobs import enqueue, lanes, sqs_batch
from posterflow.split import csv_input, manifest_input, zip_input
from posterflow.split.base import ChunkWriter, Items, Settle, SplitFailed

logger = Logger(child=True)
CHUNK = 100
# Rows a CSV upload may hold; a file over it is refused before any item is written. With the
# run's other limits, so one module holds every knob of a run (tests lower them).
MAX_ROWS = csvreader.DEFAULT_MAX_ROWS
# Stop and continue in a new invocation when less than this is left.
RESERVE_MS = 60_000
META_TEMPLATE = "template-id"
META_EMAIL = "notify-email"
META_WEBHOOK = "webhook-url"
META_PRIORITY = "priority"


def _job_id_for(bucket: str, key: str, etag: str) -> str:
    """Deterministic, so a redelivered S3 event finds the job it already created."""
    return hashlib.sha256(f"{bucket}/{key}/{etag}".encode()).hexdigest()[:32]


def handle(event: dict[str, Any], remaining_ms: Callable[[], int]) -> dict[str, Any]:
    """The split queue's batch: each message alone; one whose split failed is left for
    redelivery (it resumes from its own state, and nothing it already did counts twice)."""
    return sqs_batch.each_record(event, lambda record: handle_message(record.body, remaining_ms))


def handle_message(raw: str, remaining_ms: Callable[[], int]) -> None:
    """One split message: an S3 event (a test event, or uploads to start), a continuation or a
    manifest. A body that is no JSON object is logged and dropped (no delivery can change it);
    a split that fails raises."""
    try:
        body = json.loads(raw)
    except json.JSONDecodeError:
        logger.error("unparsable split message", extra={"body": raw[:500]})
        return
    if not isinstance(body, dict):
        logger.error("split message is not a JSON object", extra={"body": raw[:500]})
        return
    try:
        if body.get("Event") == "s3:TestEvent":
            return
        if "continue" in body:
            _run(body["continue"], remaining_ms)
        if "manifest" in body:
            m = body["manifest"]
            _run({"job_id": m["job_id"], "kind": "manifest", "bucket": m["bucket"], "key": m["key"],
                  "cursor": None, "sent": 0}, remaining_ms)
        for s3_record in body.get("Records", []):
            start = _start(s3_record)
            if start is not None:
                _run(start, remaining_ms)
    except Exception:
        logger.exception("split failed; the message will be retried")
        raise


def _start(s3_record: dict[str, Any]) -> dict[str, Any] | None:
    notified = S3EventRecord(s3_record).s3  # an S3 notification, inside the SQS message's body
    bucket = notified.bucket.name
    key = unquote_plus(notified.get_object.key)  # notifications URL-encode keys
    lower = key.lower()
    kind: Literal["poster", "crop"]
    if lower.endswith(".csv"):
        kind = "poster"
    elif lower.endswith(".zip"):
        kind = "crop"
    else:
        logger.info("ignoring an upload that is neither .csv nor .zip", extra={"key": key})
        return None
    s3 = aws.client("s3")
    head = s3.head_object(Bucket=bucket, Key=key)
    meta = {k.lower(): v for k, v in head.get("Metadata", {}).items()}
    # uploads/<tenant>/<job_id>/<file> names a job created first with POST /api/uploads, and
    # only when the job is that tenant's; any other key is a drop by someone with write access
    # to the bucket, which makes a job of the default tenant.
    parts = key.split("/")
    job = jobs.find_job(parts[2]) if len(parts) >= 4 else None
    if job is not None and job.tenant != parts[1]:
        job = None
    if job is None:
        job_id = _job_id_for(bucket, key, head["ETag"].strip('"'))
        job = jobs.find_job(job_id)
        if job is None:
            try:
                priority, refused = lanes.priority_from_text(meta.get(META_PRIORITY)), None
            except lanes.InvalidPriority as exc:
                priority, refused = None, exc
            job = jobs.create_job(kind, None, job_id=job_id, tenant=tenancy.DEFAULT_TENANT, name=parts[-1],
                                  notify_email=meta.get(META_EMAIL),
                                  webhook_url=meta.get(META_WEBHOOK), template_id=meta.get(META_TEMPLATE),
                                  metadata={"upload": key}, priority=priority)
            if refused is not None:
                # Refused as a whole, like an unreadable file: the job fails with the reason.
                jobs.add_log(job.job_id, "ERROR", f"upload refused: {refused.message}", refused.details)
                jobs.set_total(job.job_id, 0)
                jobs.fail_job(job.job_id, f"upload refused: metadata {META_PRIORITY}: {refused.message}")
                return None
    if job.total is not None:
        logger.info("upload already split", extra={"job_id": job.job_id})
        return None
    return {"job_id": job.job_id, "kind": job.kind, "bucket": bucket, "key": key, "etag": head["ETag"],
            "size": head["ContentLength"], "cursor": None, "sent": 0}


def _run(state: dict[str, Any], remaining_ms: Callable[[], int]) -> None:
    job_id = state["job_id"]
    if "priority" not in state:
        # The job's lane, read once per input: continuations carry it, so a paused split
        # goes on queueing in the same lane.
        job = jobs.find_job(job_id)
        state["priority"] = job.priority if job is not None else None
    try:
        split = {"poster": _split_csv, "crop": _split_zip, "manifest": _split_manifest}[state["kind"]]
        finished = split(state, remaining_ms)
    except (SplitFailed, csvreader.CsvError, zipindex.BadZip) as exc:
        reason = exc.message
        logger.warning("upload refused", extra={"job_id": job_id, "reason": reason})
        jobs.add_log(job_id, "ERROR", f"upload refused: {reason}")
        jobs.set_total(job_id, state["sent"])
        # Refused partway (items already queued) still fails the job: ending "completed" with
        # the rest of the file silently missing is what must never happen.
        jobs.fail_job(job_id, f"upload refused: {reason}")
        return
    if finished:
        jobs.set_total(job_id, state["sent"])
        jobs.add_log(job_id, "INFO", f"split {state['key']} into {state['sent']} item(s)")
    else:
        enqueue.send_messages("split", [{"continue": state}])
        jobs.add_log(job_id, "INFO", f"split paused after {state['sent']} item(s); continuing")


def _chunked(items: Items, state: dict[str, Any], queue: str, remaining_ms: Callable[[], int],
             cursor_of: Callable[[jobs.NewItem], Any], settle: Settle | None = None) -> bool:
    """Write and queue items in chunks; True when the input is exhausted. ``queue`` names the
    work (``render``, ``crop``): the messages go to its queue in the job's lane. ``settle`` runs
    after each chunk is written and queued (the CSV path finishes its failed rows there, the
    ZIP path its entries that are not photos)."""
    queue = lanes.queue_key(queue, state.get("priority"))
    rewrite: bool | None = None  # whether this invocation repeats one that already wrote items
    chunk: list[tuple[jobs.NewItem, dict[str, Any] | None, Any]] = []

    def flush() -> None:
        nonlocal rewrite
        if not chunk:
            return
        written = [c[0] for c in chunk]
        if rewrite is None:
            rewrite = _already_written(state["job_id"], written[0].item_id)
        jobs.put_items(state["job_id"], written, if_absent=rewrite)
        enqueue.send_messages(queue, [c[1] for c in chunk if c[1] is not None])
        if settle is not None:
            settle(written)
        state["sent"] += len(chunk)
        state["cursor"] = chunk[-1][2]
        chunk.clear()
        jobs.touch(state["job_id"])

    for item, message, marker in ((i, m, cursor_of(i)) for i, m in items):
        chunk.append((item, message, marker))
        if len(chunk) >= CHUNK:
            flush()
            if remaining_ms() < RESERVE_MS:
                return False
    flush()
    return True


def _already_written(job_id: str, item_id: int) -> bool:
    """Whether a redelivered message is repeating work: chunks are written in order and in
    full before anything is queued, so if the first item this invocation would write is
    absent, nothing after it was written or finished, and plain (overwriting) writes are safe.
    If it exists, every write must be conditional: an overwrite would reset a finished item
    (a failed row, a rendered poster) to pending and let it count twice."""
    try:
        jobs.get_item(job_id, item_id)
    except jobs.ItemNotFound:
        return False
    return True


def _writer(state: dict[str, Any], remaining_ms: Callable[[], int]) -> ChunkWriter:
    """The chunk writer of this run, for an input kind to hand its items to."""
    def write(items: Items, queue: str, cursor_of: Callable[[jobs.NewItem], Any],
              settle: Settle | None = None) -> bool:
        return _chunked(items, state, queue, remaining_ms, cursor_of, settle)
    return write


def _split_csv(state: dict[str, Any], remaining_ms: Callable[[], int]) -> bool:
    return csv_input.split_csv(state, _writer(state, remaining_ms), max_rows=MAX_ROWS)


def _split_zip(state: dict[str, Any], remaining_ms: Callable[[], int]) -> bool:
    return zip_input.split_zip(state, _writer(state, remaining_ms))


def _split_manifest(state: dict[str, Any], remaining_ms: Callable[[], int]) -> bool:
    return manifest_input.split_manifest(state, _writer(state, remaining_ms))


def upload_metadata(template_id: str | None, notify_email: str | None, webhook_url: str | None,
                    priority: int | None = None) -> dict[str, str]:
    """S3 object metadata that tells the splitter about a dropped upload."""
    out = {META_TEMPLATE: template_id, META_EMAIL: notify_email, META_WEBHOOK: webhook_url,
           META_PRIORITY: None if priority is None else str(priority)}
    return {k: v for k, v in out.items() if v}

