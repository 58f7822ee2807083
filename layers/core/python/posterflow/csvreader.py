"""Streaming CSV reading for uploads and bulk requests, and escaping for CSVs we write.

The reader takes any binary file-like with ``read(n)`` (an S3 ``StreamingBody``, an open
file, ``io.BytesIO``) and never holds the whole input: it decides the encoding, line ending
and delimiter from a leading sample, then decodes and parses line by line.

- Encoding: UTF-8 with or without BOM, else Windows-1252 (Excel's "CSV" on Windows). UTF-16
  and binary input (NUL bytes, control characters, ZIP/XLSX/PDF/image signatures) are refused
  with a reason. A byte sequence invalid in the chosen encoding further on is a
  :class:`CsvError` naming the line and byte offset, never silently replaced.
- Delimiter: the one of ``,`` ``;`` tab that splits the header into most columns consistently.
- Quoted fields may contain delimiters, quotes and newlines.
- Header names are normalised: trimmed, lower-cased, inner whitespace → ``_``
  (``"Username "`` → ``username``, ``"First Name"`` → ``first_name``).
- Blank rows are skipped and counted; a row limit raises :class:`CsvRowLimitExceeded`.
- Cells are data: ``=HYPERLINK(...)`` is returned verbatim. :func:`escape_csv_cell` guards the
  CSVs we write against formula injection.
- Rows carry their number, line and the byte offset where they end, so a splitter can
  checkpoint (:meth:`CsvReader.checkpoint`) and continue from there with a ranged read.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

DEFAULT_MAX_ROWS = 100_000
SAMPLE_BYTES = 64 * 1024
MAX_LINE_BYTES = 1024 * 1024
_CHUNK = 64 * 1024
DELIMITERS = (",", ";", "\t")

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook is one: export it as CSV)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel/Office document (export it as CSV)"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
)
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"


class CsvError(ValueError):
    """The input cannot be read as CSV; ``reason`` is meant for the person who uploaded it."""

    def __init__(self, reason: str, *, code: str, line: int | None = None, offset: int | None = None) -> None:
        where = f" (line {line})" if line is not None else ""
        super().__init__(reason + where)
        self.reason = reason
        self.code = code
        self.line = line
        self.offset = offset


class CsvRowLimitExceeded(CsvError):
    pass


class BinaryReadable(Protocol):
    def read(self, amt: int = ..., /) -> bytes: ...


@dataclass(frozen=True)
class CsvRow:
    number: int  # 1-based among non-blank data rows: stable, usable as an item id (number - 1)
    line: int  # physical line where the record starts; the header is on line 1
    values: dict[str, str]
    end_offset: int  # byte offset in the whole input just after this row
    error: str | None = None  # set when the row cannot be used as is (the item fails with it)


@dataclass(frozen=True)
class Checkpoint:
    """Where a reader stopped; JSON-serialisable with :meth:`to_dict`."""

    offset: int
    rows: int
    line: int
    blank_rows: int
    header: tuple[str, ...]
    encoding: str
    delimiter: str
    newline: str
    missing_columns: tuple[str, ...] = field(default=())
    required: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(**{**data, "header": tuple(data["header"]),
                      "missing_columns": tuple(data.get("missing_columns", ())),
                      "required": tuple(data.get("required", ()))})


def normalise_header(name: str) -> str:
    return re.sub(r"\s+", "_", name.strip(_INVISIBLE + " \t\r\n").strip().lower())


def escape_csv_cell(value: object) -> str:
    """A cell safe to open in a spreadsheet: text starting with ``= + - @``, tab or CR gets a
    leading ``'`` so it is shown, not evaluated (OWASP CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


def escape_csv_row(values: Iterable[object]) -> list[str]:
    return [escape_csv_cell(v) for v in values]


def _looks_binary(sample: bytes) -> str | None:
    for signature, what in _SIGNATURES:
        if sample.startswith(signature):
            return f"the file is {what}, not CSV text"
    if b"\x00" in sample:
        return "the file contains NUL bytes: it is binary, not CSV text"
    controls = sum(1 for b in sample if (b < 0x20 and b not in b"\t\n\r\f\v") or b == 0x7F)
    if sample and controls / len(sample) > 0.01:
        return "the file contains control characters: it is binary, not CSV text"
    return None


def _detect_encoding(sample: bytes, at_eof: bool) -> tuple[str, int]:
    """(encoding, BOM length)."""
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise CsvError("UTF-16/32 text is not supported: save the file as CSV UTF-8", code="encoding")
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8", len(codecs.BOM_UTF8)
    try:
        # final=False: a multi-byte character cut by the end of the sample is not an error.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=at_eof)
        return "utf-8", 0
    except UnicodeDecodeError:
        pass
    try:
        sample.decode("cp1252")
        return "cp1252", 0
    except UnicodeDecodeError as exc:
        raise CsvError("the file is neither UTF-8 nor Windows-1252 text", code="encoding", offset=exc.start) from exc


def _sniff_delimiter(text: str) -> str:
    best, best_score = ",", (0.0, 0)
    for delimiter in DELIMITERS:
        records = [r for r in csv.reader(text.splitlines(keepends=True), delimiter=delimiter)
                   if any(c.strip() for c in r)][:50]
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        consistent = sum(1 for r in records if len(r) == width) / len(records)
        score = (consistent, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


class CsvReader:
    """Iterate :class:`CsvRow` objects from a binary stream.

    ``checkpoint``: continue a previous read; ``stream`` must then start at
    ``checkpoint.offset`` (an S3 GET with ``Range: bytes=<offset>-``).
    ``required_columns``: names (normalised like the header) every row needs; when the header
    lacks some, :attr:`missing_columns` lists them and every row carries an error naming them.
    """

    def __init__(
        self,
        stream: BinaryReadable,
        *,
        max_rows: int | None = DEFAULT_MAX_ROWS,
        required_columns: Sequence[str] = (),
        checkpoint: Checkpoint | None = None,
        sample_bytes: int = SAMPLE_BYTES,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self._stream = stream
        self.max_rows = max_rows
        self._max_line_bytes = max_line_bytes
        self._eof = False
        self._buffer = b""
        self.blank_rows = 0
        self.rows = 0
        self._line = 0  # lines consumed so far
        self._offset = 0  # bytes consumed so far (end of the last line handed to the parser)
        self._iterating = False
        if checkpoint is not None:
            self.encoding = checkpoint.encoding
            self.delimiter = checkpoint.delimiter
            self._newline = checkpoint.newline.encode()
            self.header = list(checkpoint.header)
            self.missing_columns = list(checkpoint.missing_columns)
            self._required = list(checkpoint.required)
            self.rows = checkpoint.rows
            self.blank_rows = checkpoint.blank_rows
            self._line = checkpoint.line
            self._offset = checkpoint.offset
            self._bom = 0
            self._records = self._parse()
            return
        sample = self._fill(sample_bytes)
        if not sample:
            raise CsvError("the file is empty", code="empty")
        # Encoding first: UTF-16 text is full of NUL bytes but deserves its own message.
        self.encoding, self._bom = _detect_encoding(sample, self._eof)
        reason = _looks_binary(sample)
        if reason:
            raise CsvError(reason, code="binary")
        self._newline = b"\n" if b"\n" in sample else (b"\r" if b"\r" in sample else b"\n")
        complete = sample if self._eof else sample[: sample.rfind(self._newline) + 1] or sample
        text = complete[self._bom:].decode(self.encoding, errors="replace")
        self.delimiter = _sniff_delimiter(text)
        self._records = self._parse()
        self.header = self._read_header()
        required = [normalise_header(c) for c in required_columns]
        self.missing_columns = [c for c in required if c not in self.header]
        self._required = required

    # -- reading -------------------------------------------------------------------

    def _fill(self, size: int) -> bytes:
        """Make the buffer hold at least ``size`` bytes (or everything left)."""
        while len(self._buffer) < size and not self._eof:
            chunk = self._stream.read(max(1, min(_CHUNK, size - len(self._buffer))))
            if not chunk:
                self._eof = True
            else:
                self._buffer += chunk
        return self._buffer

    def _lines(self) -> Iterator[str]:
        while True:
            at = self._buffer.find(self._newline)
            while at < 0 and not self._eof and len(self._buffer) <= self._max_line_bytes:
                self._fill(len(self._buffer) + _CHUNK)
                at = self._buffer.find(self._newline)
            if at < 0:
                raw, self._buffer = self._buffer, b""
                if not raw:
                    return
            else:
                raw, self._buffer = self._buffer[: at + 1], self._buffer[at + 1:]
            if len(raw) > self._max_line_bytes:
                raise CsvError(f"a line is longer than {self._max_line_bytes} bytes", code="line_too_long",
                               line=self._line + 1, offset=self._offset)
            start = self._offset
            body = raw[self._bom:] if start == 0 else raw
            try:
                text = body.decode(self.encoding)
            except UnicodeDecodeError as exc:
                name = "UTF-8" if self.encoding == "utf-8" else "Windows-1252"
                raise CsvError(
                    f"invalid {name} bytes at byte offset {start + exc.start}; the start of the file was "
                    f"{name}, so the file mixes encodings: save it again as CSV UTF-8",
                    code="encoding", line=self._line + 1, offset=start + exc.start,
                ) from exc
            self._offset += len(raw)
            self._line += 1
            yield text

    def _parse(self) -> Iterator[tuple[int, list[str]]]:
        """(start line, cells) per record; ``self._offset`` is then the record's end."""
        reader = csv.reader(self._lines(), delimiter=self.delimiter)
        while True:
            start = self._line + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise CsvError(f"malformed CSV: {exc}", code="malformed", line=start, offset=self._offset) from exc
            yield start, cells

    def _read_header(self) -> list[str]:
        for _, cells in self._records:
            if not any(c.strip() for c in cells):
                continue
            header = [normalise_header(c) or f"column_{i + 1}" for i, c in enumerate(cells)]
            seen: dict[str, int] = {}
            for i, name in enumerate(header):
                if name in seen:
                    raise CsvError(f"duplicate column {name!r} (columns {seen[name] + 1} and {i + 1})",
                                   code="duplicate_column", line=self._line)
                seen[name] = i
            return header
        raise CsvError("the file has no header row", code="empty")

    def __iter__(self) -> Iterator[CsvRow]:
        if self._iterating:
            raise RuntimeError("a CsvReader can be iterated once")
        self._iterating = True
        required = self._required
        missing_error = (f"missing required column(s): {', '.join(self.missing_columns)}"
                         if self.missing_columns else None)
        width = len(self.header)
        for line, cells in self._records:
            if not any(c.strip() for c in cells):
                self.blank_rows += 1
                continue
            if self.max_rows is not None and self.rows >= self.max_rows:
                raise CsvRowLimitExceeded(
                    f"the CSV has more than {self.max_rows} rows (the limit is {self.max_rows}): "
                    "split it into smaller files", code="row_limit", line=line)
            self.rows += 1
            error = missing_error
            if len(cells) > width and any(c.strip() for c in cells[width:]):
                error = error or f"row has {len(cells)} cells but the header has {width} columns"
            values = dict(zip(self.header, cells, strict=False))
            short = self.header[len(cells):]
            for name in short:
                values[name] = ""
            missing_cells = [n for n in short if n in required]
            if missing_cells and error is None:
                error = f"row has {len(cells)} cells; no value for {', '.join(missing_cells)}"
            yield CsvRow(number=self.rows, line=line, values=values, end_offset=self._offset, error=error)

    def checkpoint(self) -> Checkpoint:
        """Where to continue after the last row yielded."""
        return Checkpoint(offset=self._offset, rows=self.rows, line=self._line, blank_rows=self.blank_rows,
                          header=tuple(self.header), encoding=self.encoding, delimiter=self.delimiter,
                          newline=self._newline.decode(), missing_columns=tuple(self.missing_columns),
                          required=tuple(self._required))

    def require_columns(self) -> None:
        """Raise instead of failing row by row when required columns are missing."""
        if self.missing_columns:
            raise CsvError(f"missing required column(s): {', '.join(self.missing_columns)}",
                           code="missing_columns", line=1)


def read_rows(data: bytes | BinaryReadable, **kwargs: Any) -> list[CsvRow]:
    """Convenience for small inputs (an inline ``csvData`` string encoded, a test)."""
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    return list(CsvReader(stream, **kwargs))
