"""The archive's ``manifest.csv`` and ``manifest.json``: one row per item, whatever its status.

Rows are spooled to temporary files while the outputs stream into the ZIP, so a 10,000-item
job does not hold its manifest in memory; the files are appended to the archive at the end.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import IO, Any

from posterflow.formats.csvreader import escape_csv_cell
from posterflow.jobs import Item

CSV_COLUMNS = ("item_id", "entity_id", "status", "file_name", "error_code", "error", "generation_time_ms", "attempts",
               "finished_at")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_SPOOL_BYTES = 1024 * 1024


def member_name(item: Item) -> str:
    """The output's file name inside the ZIP: item number first (unique, sorts like the job),
    then the entity id made safe for every unzip tool, then the output's extension."""
    ext = ""
    if item.output_key and "." in item.output_key.rsplit("/", 1)[-1]:
        ext = "." + item.output_key.rsplit(".", 1)[-1].lower()
    entity = _UNSAFE_NAME.sub("_", item.entity_id or "").strip("._")[:80]
    return f"{item.item_id:06d}_{entity}{ext}" if entity else f"{item.item_id:06d}{ext}"


@dataclass(frozen=True)
class ManifestRow:
    item_id: int
    entity_id: str | None
    status: str
    file_name: str | None
    error_code: str | None
    error: str | None
    generation_time_ms: int | None
    attempts: int
    finished_at: str | None
    timings: dict[str, float]

    @classmethod
    def of(cls, item: Item, file_name: str | None) -> ManifestRow:
        return cls(
            item_id=item.item_id,
            entity_id=item.entity_id,
            status=str(item.status),
            file_name=file_name,
            error_code=item.error_code,
            error=item.error,
            generation_time_ms=item.generation_time_ms,
            attempts=item.attempts,
            finished_at=item.finished_at,
            timings=dict(item.timings),
        )

    def as_dict(self) -> dict[str, Any]:
        # Shallow (the one nested field is a flat dict of numbers): ``dataclasses.asdict``
        # deep-copies, and a 1,000-item archive built its rows twice over that way.
        return {name: getattr(self, name) for name in _ROW_FIELDS} | {"timings": dict(self.timings)}

    def csv_cells(self, values: dict[str, Any] | None = None) -> list[str]:
        values = values if values is not None else self.as_dict()
        return [escape_csv_cell(values[c]) for c in CSV_COLUMNS]


_ROW_FIELDS = tuple(f.name for f in fields(ManifestRow))


class ManifestWriter:
    """Accumulates rows in two spooled temp files (memory up to 1 MB each, then disk)."""

    def __init__(self, job_summary: dict[str, Any]) -> None:
        # Open for the writer's lifetime (rows arrive over the whole archive build); close() ends it.
        self._csv_file: IO[str] = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            _SPOOL_BYTES, mode="w+", newline="", encoding="utf-8"
        )
        self._json_file: IO[str] = tempfile.SpooledTemporaryFile(_SPOOL_BYTES, mode="w+", encoding="utf-8")  # noqa: SIM115
        self._csv = csv.writer(self._csv_file)
        self._csv.writerow(CSV_COLUMNS)
        # manifest.json is one object: the job summary, then the items array written row by row.
        head = json.dumps(job_summary, default=str)[:-1]
        self._json_file.write(head + (', "items": [' if head != "{" else '"items": ['))
        self.rows = 0
        self._json_closed = False

    def add(self, row: ManifestRow) -> None:
        values = row.as_dict()
        self._csv.writerow(row.csv_cells(values))
        self._json_file.write(("," if self.rows else "") + "\n  " + json.dumps(values, default=str))
        self.rows += 1

    def csv_chunks(self) -> Iterator[bytes]:
        return _read_chunks(self._csv_file, "")

    def json_chunks(self) -> Iterator[bytes]:
        tail = "" if self._json_closed else "\n]}\n"
        self._json_closed = True
        return _read_chunks(self._json_file, tail)

    def close(self) -> None:
        self._csv_file.close()
        self._json_file.close()


def _read_chunks(f: IO[str], tail: str) -> Iterator[bytes]:
    if tail:
        f.seek(0, io.SEEK_END)
        f.write(tail)
    f.seek(0)
    while chunk := f.read(64 * 1024):
        yield chunk.encode("utf-8")
