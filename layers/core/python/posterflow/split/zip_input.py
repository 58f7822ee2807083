"""ZIP uploads: one crop item per entry, read by ranged reads of the central directory (a 5 GB
archive is never downloaded). Photos are queued for the crop worker; the other entries
(directories, metadata, non-images: skipped; refused photos: failed) never reach a worker
and are finished by the splitter as soon as their chunk is written."""

from __future__ import annotations

from typing import Any

from posterflow import jobs
from posterflow.formats import zipindex
from posterflow.split.base import ChunkWriter, Items


def split_zip(state: dict[str, Any], write: ChunkWriter) -> bool:
    reader = zipindex.S3RangeReader(state["bucket"], state["key"], size=state["size"], etag=state["etag"])
    directory = zipindex.open_zip(reader)
    if state["cursor"] is None:
        summary = zipindex.scan(reader)  # refuses a bomb before any work is sent
        jobs.add_log(state["job_id"], "INFO", f"ZIP with {summary.entries} entries: {summary.images} images, "
                     f"{summary.skipped} skipped, {summary.failed} refused", {"reasons": summary.reasons})
    start = zipindex.ZipCursor.model_validate(state["cursor"]["zip"]) if state["cursor"] else None
    last: dict[str, zipindex.ZipEntry] = {}
    not_photos: dict[int, zipindex.ZipEntry] = {}  # by item id, until finished

    def items() -> Items:
        for entry in zipindex.iter_entries(reader, directory, start=start):
            last["entry"] = entry
            described: dict[str, Any] = {"verdict": str(entry.verdict), "reason": entry.reason}
            if entry.verdict != zipindex.Verdict.IMAGE:
                not_photos[entry.index] = entry
                yield jobs.NewItem(item_id=entry.index, entity_id=entry.name[-200:], input=described), None
                continue
            # The item keeps where its photo is, so a retry can send it again (posterflow.jobs.retry).
            photo = {"bucket": state["bucket"], "key": state["key"], "etag": state["etag"],
                     "entry": entry.model_dump(mode="json")}
            yield (jobs.NewItem(item_id=entry.index, entity_id=entry.name[-200:], input={**described, "photo": photo}),
                   {"job_id": state["job_id"], "item_id": entry.index, **photo})

    def cursor_of(_: jobs.NewItem) -> dict[str, Any]:
        return {"zip": last["entry"].cursor_after().model_dump()}

    def settle(written: list[jobs.NewItem]) -> None:
        # As the CSV path's failed rows: finished with their chunk, so a crash later in the run
        # cannot leave them pending (were the split then never to succeed, only the stall sweep
        # would finish them, as failed); finishing counts each exactly once, so a redelivered
        # split finishing them again is harmless.
        outcomes = [_outcome(not_photos.pop(i.item_id)) for i in written if i.item_id in not_photos]
        if outcomes:
            jobs.finish_items(state["job_id"], outcomes, source="splitter: ZIP entries")

    return write(items(), "crop", cursor_of, settle)


def _outcome(entry: zipindex.ZipEntry) -> jobs.ItemOutcome:
    status = jobs.ItemStatus.SKIPPED if entry.verdict == zipindex.Verdict.SKIP else jobs.ItemStatus.FAILED
    return jobs.ItemOutcome(item_id=entry.index, status=status, error=entry.detail or entry.reason,
                            error_code=entry.reason)
