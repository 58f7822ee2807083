"""CSV uploads: one poster item per row, rendered from the job's template.

Every row is accounted for: a row the reader cannot read, or one over an item's size, is an
item failed with its line and reason as soon as its chunk is written; a file refused as a
whole (not text, no header, no rows, over the row limit) fails the job before any item is
written."""

from __future__ import annotations

import json
from typing import Any

from posterflow import aws, jobs
from posterflow.errors import Reason
from posterflow.formats import csvreader
from posterflow.posters import template_store
from posterflow.split.base import ChunkWriter, Items, SplitFailed

# A failed row's entity id is for people to find the row, not its whole first cell.
MAX_FAILED_ENTITY_CHARS = 200


def split_csv(state: dict[str, Any], write: ChunkWriter, *, max_rows: int) -> bool:
    job = jobs.get_job(state["job_id"])
    if not job.template_id:
        raise SplitFailed("no template: set the x-amz-meta-template-id metadata on the upload, "
                          "or create the job with POST /api/uploads")
    try:
        tv = template_store.get(job.template_id, tenant=job.tenant)
    except template_store.TemplateNotFound as exc:
        raise SplitFailed(exc.message, reason=exc.reason) from None
    required = [p.name for p in tv.placeholders if p.required]
    checkpoint = csvreader.Checkpoint.from_dict(state["cursor"]) if state["cursor"] else None
    get_args: dict[str, Any] = {"Bucket": state["bucket"], "Key": state["key"], "IfMatch": state["etag"]}
    if checkpoint is None:
        rows = _count_rows(get_args, required, max_rows)
        jobs.add_log(job.job_id, "INFO", f"CSV with {rows} row(s)")
    else:
        get_args["Range"] = f"bytes={checkpoint.offset}-"
    body = aws.client("s3").get_object(**get_args)["Body"]
    reader = csvreader.CsvReader(body, required_columns=required, checkpoint=checkpoint, max_rows=max_rows)
    spec_extra = job.metadata.get("spec", {}) if isinstance(job.metadata.get("spec"), dict) else {}
    pinned = tv.id
    failures: dict[int, tuple[str, Reason]] = {}  # rows that can never render, by item id, until finished

    def items() -> Items:
        for row in reader:
            item_id = row.number - 1
            entity = _entity(row.values, item_id)
            spec = {**spec_extra, "template_id": pinned, "custom_data": row.values, "entity_id": entity}
            error, code = (row.error, row.error_code or Reason.MALFORMED) if row.error else (_too_large(spec),
                                                                                          Reason.ROW_TOO_LARGE)
            if error:
                # The row is an item that fails with its line and reason, so nothing is
                # silently skipped; without a template_id it is left out of retries.
                failures[item_id] = (f"line {row.line}: {error}", code)
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
        outcomes = [jobs.ItemOutcome(item_id=i.item_id, status=jobs.ItemStatus.FAILED, error=error, error_code=code)
                    for i in written if i.item_id in failures for error, code in [failures.pop(i.item_id)]]
        if outcomes:
            jobs.finish_items(job.job_id, outcomes, source="splitter: CSV rows")

    done = write(items(), "render", cursor_of, settle)
    if reader.blank_rows and done:
        jobs.add_log(job.job_id, "INFO", f"{reader.blank_rows} blank row(s) skipped")
    return done


def _count_rows(get_args: dict[str, Any], required: list[str], max_rows: int) -> int:
    """Read the whole CSV once before writing anything, so a file refused as a whole (over
    ``max_rows``, or with no rows at all) fails the job before any item is queued. The read
    stops at the limit, so it is bounded like the split itself."""
    body = aws.client("s3").get_object(**get_args)["Body"]
    reader = csvreader.CsvReader(body, required_columns=required, max_rows=max_rows)
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


def _entity(values: dict[str, str], item_id: int) -> str:
    for key in ("entity_id", "id", "username", "user_id"):
        if values.get(key):
            return str(values[key])
    for key, value in values.items():
        if key.endswith("_id") and value:
            return str(value)
    return str(item_id)
