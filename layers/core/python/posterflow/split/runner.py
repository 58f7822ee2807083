"""The splitter: one upload (CSV of poster rows, ZIP of photos) → one job with one message per item.

Inputs arrive on the split queue as S3 event notifications (a file put under ``uploads/``)
or as continuation messages the splitter sent itself. The input is read as a stream (CSV) or
by ranged reads of the central directory (ZIP); items are written and queued in chunks, and
when the invocation runs short of time the position is saved on the job and a continuation
message picks up from there — so a 100,000-row CSV or a 1,000,000-entry ZIP never needs one
long invocation, and nothing counts twice (an invocation that finds its first item already
written — a redelivered message — writes every item only if absent).

Every CSV row is accounted for: a row the reader cannot read, or one over an item's size,
is an item failed with its line and reason as soon as its chunk is written; a file refused
as a whole (not text, no header, no rows, over :data:`MAX_ROWS`) fails the job before any
item is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any, Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger

from posterflow import aws, jobs, tenancy
from posterflow.formats import csvreader, zipindex
from posterflow.jobs import enqueue
from posterflow.posters import template_store

logger = Logger(child=True)
CHUNK = 100
# Rows a CSV upload may hold; a file over it is refused before any item is written.
MAX_ROWS = csvreader.DEFAULT_MAX_ROWS
# A failed row's entity id is for people to find the row, not its whole first cell.
MAX_FAILED_ENTITY_CHARS = 200
# Stop and continue in a new invocation when less than this is left.
RESERVE_MS = 60_000
META_TEMPLATE = "template-id"
META_EMAIL = "notify-email"
META_WEBHOOK = "webhook-url"


class SplitFailed(Exception):
    """The whole input is unusable: the job fails with this reason."""


def _job_id_for(bucket: str, key: str, etag: str) -> str:
    """Deterministic, so a redelivered S3 event finds the job it already created."""
    return hashlib.sha256(f"{bucket}/{key}/{etag}".encode()).hexdigest()[:32]


def handle(event: dict[str, Any], remaining_ms: Callable[[], int]) -> dict[str, Any]:
    failures: list[dict[str, str]] = []
    for record in event.get("Records", []):
        try:
            body = json.loads(record["body"])
        except json.JSONDecodeError:
            logger.error("unparsable split message", extra={"body": record["body"][:500]})
            continue
        try:
            if body.get("Event") == "s3:TestEvent":
                continue
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
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def _start(s3_record: dict[str, Any]) -> dict[str, Any] | None:
    bucket = s3_record["s3"]["bucket"]["name"]
    key = unquote_plus(s3_record["s3"]["object"]["key"])
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
            job = jobs.create_job(kind, None, job_id=job_id, tenant=tenancy.DEFAULT_TENANT, name=parts[-1],
                                  notify_email=meta.get(META_EMAIL),
                                  webhook_url=meta.get(META_WEBHOOK), template_id=meta.get(META_TEMPLATE),
                                  metadata={"upload": key})
    if job.total is not None:
        logger.info("upload already split", extra={"job_id": job.job_id})
        return None
    return {"job_id": job.job_id, "kind": job.kind, "bucket": bucket, "key": key, "etag": head["ETag"],
            "size": head["ContentLength"], "cursor": None, "sent": 0}


def _run(state: dict[str, Any], remaining_ms: Callable[[], int]) -> None:
    job_id = state["job_id"]
    try:
        split = {"poster": _split_csv, "crop": _split_zip, "manifest": _split_manifest}[state["kind"]]
        finished = split(state, remaining_ms)
    except (SplitFailed, csvreader.CsvError, zipindex.BadZip) as exc:
        reason = getattr(exc, "message", None) or str(exc)
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


def _chunked(items: Iterator[tuple[jobs.NewItem, dict[str, Any] | None]], state: dict[str, Any], queue: str,
             remaining_ms: Callable[[], int], cursor_of: Callable[[Any], Any],
             settle: Callable[[list[jobs.NewItem]], None] | None = None) -> bool:
    """Write and queue items in chunks; True when the input is exhausted. ``settle`` runs
    after each chunk is written and queued (the CSV path finishes its failed rows there)."""
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


def _split_csv(state: dict[str, Any], remaining_ms: Callable[[], int]) -> bool:
    job = jobs.get_job(state["job_id"])
    if not job.template_id:
        raise SplitFailed("no template: set the x-amz-meta-template-id metadata on the upload, "
                          "or create the job with POST /api/uploads")
    try:
        tv = template_store.get(job.template_id, tenant=job.tenant)
    except template_store.TemplateNotFound as exc:
        raise SplitFailed(str(exc)) from None
    required = [p.name for p in tv.placeholders if p.required]
    checkpoint = csvreader.Checkpoint.from_dict(state["cursor"]) if state["cursor"] else None
    get_args: dict[str, Any] = {"Bucket": state["bucket"], "Key": state["key"], "IfMatch": state["etag"]}
    if checkpoint is None:
        rows = _count_rows(get_args, required)
        jobs.add_log(job.job_id, "INFO", f"CSV with {rows} row(s)")
    else:
        get_args["Range"] = f"bytes={checkpoint.offset}-"
    body = aws.client("s3").get_object(**get_args)["Body"]
    reader = csvreader.CsvReader(body, required_columns=required, checkpoint=checkpoint, max_rows=MAX_ROWS)
    spec_extra = job.metadata.get("spec", {}) if isinstance(job.metadata.get("spec"), dict) else {}
    pinned = tv.id
    failures: dict[int, str] = {}  # rows that can never render, by item id, until finished

    def items() -> Iterator[tuple[jobs.NewItem, dict[str, Any] | None]]:
        for row in reader:
            item_id = row.number - 1
            entity = _entity(row.values, item_id)
            spec = {**spec_extra, "template_id": pinned, "custom_data": row.values, "entity_id": entity}
            error = row.error or _too_large(spec)
            if error:
                # The row is an item that fails with its line and reason, so nothing is
                # silently skipped; without a template_id it is left out of retries.
                failures[item_id] = f"line {row.line}: {error}"
                yield jobs.NewItem(item_id=item_id, entity_id=entity[:MAX_FAILED_ENTITY_CHARS],
                                   input={"error": error, "line": row.line}), None
                continue
            yield (jobs.NewItem(item_id=item_id, entity_id=entity, input=spec),
                   {"job_id": job.job_id, "item_id": item_id, "spec": spec})

    def cursor_of(_: jobs.NewItem) -> dict[str, Any]:
        return reader.checkpoint().to_dict()

    def settle(written: list[jobs.NewItem]) -> None:
        # Failed rows never reach a worker: finish them as soon as they are written, so a pause
        # or a crash cannot leave them pending; finishing counts each exactly once.
        outcomes = [jobs.ItemOutcome(item_id=i.item_id, status=jobs.ItemStatus.FAILED, error=failures.pop(i.item_id))
                    for i in written if i.item_id in failures]
        if outcomes:
            jobs.finish_items(job.job_id, outcomes)

    done = _chunked(items(), state, "render", remaining_ms, cursor_of, settle)
    if reader.blank_rows and done:
        jobs.add_log(job.job_id, "INFO", f"{reader.blank_rows} blank row(s) skipped")
    return done


def _count_rows(get_args: dict[str, Any], required: list[str]) -> int:
    """Read the whole CSV once before writing anything, so a file refused as a whole (over
    :data:`MAX_ROWS`, or with no rows at all) fails the job before any item is queued. The
    read stops at the limit, so it is bounded like the split itself."""
    body = aws.client("s3").get_object(**get_args)["Body"]
    reader = csvreader.CsvReader(body, required_columns=required, max_rows=MAX_ROWS)
    rows = sum(1 for _ in reader)
    if rows == 0:
        raise SplitFailed("the CSV has a header but no rows")
    return rows


def _too_large(spec: dict[str, Any]) -> str | None:
    """Why the row cannot be an item (over the inline input limit of an item), if so."""
    size = len(json.dumps(spec, default=str, separators=(",", ":")).encode())
    if size <= jobs.MAX_INLINE_INPUT_BYTES:
        return None
    return f"the row is {size} bytes of data, over the limit of {jobs.MAX_INLINE_INPUT_BYTES} bytes per row"


def _split_manifest(state: dict[str, Any], remaining_ms: Callable[[], int]) -> bool:
    """JSON lines of ``{"item_id", "entity_id", "spec"}`` written by the API for a large batch."""
    offset = int(state["cursor"] or 0)
    args: dict[str, Any] = {"Bucket": state["bucket"], "Key": state["key"]}
    if offset:
        args["Range"] = f"bytes={offset}-"
    body = aws.client("s3").get_object(**args)["Body"]
    position = {"offset": offset}

    def items() -> Iterator[tuple[jobs.NewItem, dict[str, Any] | None]]:
        for raw in body.iter_lines(keepends=True):
            position["offset"] += len(raw)
            if not raw.strip():
                continue
            line = json.loads(raw)
            yield (jobs.NewItem(item_id=line["item_id"], entity_id=line.get("entity_id"), input=line["spec"]),
                   {"job_id": state["job_id"], "item_id": line["item_id"], "spec": line["spec"]})

    return _chunked(items(), state, "render", remaining_ms, lambda _: position["offset"])


def _entity(values: dict[str, str], item_id: int) -> str:
    for key in ("entity_id", "id", "username", "user_id"):
        if values.get(key):
            return str(values[key])
    for key, value in values.items():
        if key.endswith("_id") and value:
            return str(value)
    return str(item_id)


def _split_zip(state: dict[str, Any], remaining_ms: Callable[[], int]) -> bool:
    reader = zipindex.S3RangeReader(state["bucket"], state["key"], size=state["size"], etag=state["etag"])
    directory = zipindex.open_zip(reader)
    if state["cursor"] is None:
        summary = zipindex.scan(reader)  # refuses a bomb before any work is sent
        jobs.add_log(state["job_id"], "INFO", f"ZIP with {summary.entries} entries: {summary.images} images, "
                     f"{summary.skipped} skipped, {summary.failed} refused", {"reasons": summary.reasons})
    start = zipindex.ZipCursor.model_validate(state["cursor"]["zip"]) if state["cursor"] else None
    last: dict[str, zipindex.ZipEntry] = {}
    not_photos: list[zipindex.ZipEntry] = []

    def items() -> Iterator[tuple[jobs.NewItem, dict[str, Any] | None]]:
        for entry in zipindex.iter_entries(reader, directory, start=start):
            last["entry"] = entry
            if entry.verdict != zipindex.Verdict.IMAGE:
                not_photos.append(entry)
            described: dict[str, Any] = {"verdict": str(entry.verdict), "reason": entry.reason}
            if entry.verdict != zipindex.Verdict.IMAGE:
                yield jobs.NewItem(item_id=entry.index, entity_id=entry.name[-200:], input=described), None
                continue
            # The item keeps where its photo is, so a retry can send it again (posterflow.jobs.retry).
            photo = {"bucket": state["bucket"], "key": state["key"], "etag": state["etag"],
                     "entry": entry.model_dump(mode="json")}
            yield (jobs.NewItem(item_id=entry.index, entity_id=entry.name[-200:], input={**described, "photo": photo}),
                   {"job_id": state["job_id"], "item_id": entry.index, **photo})

    def cursor_of(_: jobs.NewItem) -> dict[str, Any]:
        return {"zip": last["entry"].cursor_after().model_dump()}

    done = _chunked(items(), state, "crop", remaining_ms, cursor_of)
    for entry in not_photos:
        status = "skipped" if entry.verdict == zipindex.Verdict.SKIP else "failed"
        jobs.finish_item(state["job_id"], entry.index, status=status, error=f"{entry.reason}: {entry.detail}")
    return done


def upload_metadata(template_id: str | None, notify_email: str | None, webhook_url: str | None) -> dict[str, str]:
    """S3 object metadata that tells the splitter about a dropped upload."""
    out = {META_TEMPLATE: template_id, META_EMAIL: notify_email, META_WEBHOOK: webhook_url}
    return {k: v for k, v in out.items() if v}

