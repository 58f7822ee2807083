"""Streaming CSV reading for uploads and bulk requests, and escaping for CSVs we write.

The reader takes any binary file-like with ``read(n)`` (an S3 ``StreamingBody``, an open
file, ``io.BytesIO``) and never holds the whole input: it decides the encoding, line ending
and delimiter from a leading sample, then decodes and parses line by line.

- Encoding: UTF-8 with or without BOM, else Windows-1252 (Excel's "CSV" on Windows). UTF-16
  and binary input (NUL bytes, control characters, ZIP/XLSX/PDF/image signatures) are refused
  with a reason. A byte sequence invalid in the chosen encoding further on fails its row, with
  an error naming the line and byte offset; it is never silently replaced.
- Delimiter: the one of ``,`` ``;`` tab that splits the header into most columns consistently.
- Quoted fields may contain delimiters, quotes and newlines.
- Every data row is accounted for: a row that cannot be read (a line over the limit, broken
  quoting, bad bytes) is a :class:`CsvRow` with ``error`` set, and reading goes on after it.
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
from typing import Any, NamedTuple, NoReturn, Protocol

from posterflow.errors import Reason
from posterflow.formats.errors import CsvError as CsvError
from posterflow.formats.errors import CsvRowLimitExceeded as CsvRowLimitExceeded

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


class BinaryReadable(Protocol):
    def read(self, amt: int = ..., /) -> bytes: ...


@dataclass(frozen=True)
class CsvRow:
    number: int  # 1-based among non-blank data rows: stable, usable as an item id (number - 1)
    line: int  # physical line where the record starts; the header is on line 1
    values: dict[str, str]
    end_offset: int  # byte offset in the whole input just after this row
    error: str | None = None  # set when the row cannot be used as is (the item fails with it)
    error_code: Reason | None = None  # the reason of error


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
        raise CsvError("UTF-16/32 text is not supported: save the file as CSV UTF-8", reason=Reason.ENCODING)
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
        raise CsvError("the file is neither UTF-8 nor Windows-1252 text", reason=Reason.ENCODING,
                       offset=exc.start) from exc


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


class _LineTooLong(Exception):
    """A line over the limit was skipped (never held whole); its record cannot be read."""


class _Interrupted(Exception):
    """A record still open (inside a quoted field) ran into a line over the limit, which is
    left unread to fail as a record of its own."""


class _Record(NamedTuple):
    line: int  # physical line where the record starts
    cells: list[str]
    error: str | None = None  # the record could not be read as is
    code: Reason | None = None  # the CsvError reason that error would carry (a header is refused with it)


class _LineSource:
    """The physical lines of the input, decoded, for ``csv.reader`` to pull from.

    It counts the bytes and lines handed out (``offset``, ``line``) and keeps the lines of the
    record being parsed, so that a record found malformed can give all but its first line back
    to be read again: a stray quote then costs one row, not every row it swallowed. A line over
    the limit is skipped as it streams by and raises :class:`_LineTooLong`; bytes invalid in
    the encoding are replaced and noted in ``record_error`` for the record to fail with."""

    def __init__(self, stream: BinaryReadable, max_line_bytes: int) -> None:
        self._stream = stream
        self._max = max_line_bytes
        self._buffer = b""
        self.eof = False
        self.encoding = "utf-8"
        self.newline = b"\n"
        self.bom = 0
        self.offset = 0  # bytes handed out so far: the end of the last line
        self.line = 0  # lines handed out so far
        self.record_line = 1
        self.record_error: str | None = None
        self.record_hit_end = False  # the record ran into the end of the input
        self._record_start = 0
        self._record: list[tuple[bytes, str]] = []

    def fill(self, size: int) -> bytes:
        """Make the buffer hold at least ``size`` bytes (or everything left)."""
        while len(self._buffer) < size and not self.eof:
            chunk = self._stream.read(max(1, min(_CHUNK, size - len(self._buffer))))
            if not chunk:
                self.eof = True
            else:
                self._buffer += chunk
        return self._buffer

    def __iter__(self) -> _LineSource:
        return self

    def __next__(self) -> str:
        raw = self._take()
        start = self.offset
        self.offset += len(raw)
        self.line += 1
        text = self._decode(raw, start)
        self._record.append((raw, text))
        return text

    def begin_record(self) -> None:
        self._record = []
        self._record_start = self.offset
        self.record_line = self.line + 1
        self.record_error = None
        self.record_hit_end = False

    @property
    def record_lines(self) -> list[str]:
        return [text for _, text in self._record]

    def give_back_all_but_first(self) -> bool:
        """Return the record's lines after its first to be read again; False if it has one."""
        if len(self._record) < 2:
            return False
        first = self._record[0][0]
        self._buffer = b"".join(raw for raw, _ in self._record[1:]) + self._buffer
        self.offset = self._record_start + len(first)
        self.line = self.record_line
        self._record = self._record[:1]
        return True

    def _take(self) -> bytes:
        at = self._buffer.find(self.newline)
        while at < 0 and not self.eof and len(self._buffer) <= self._max:
            searched = len(self._buffer)
            self.fill(searched + _CHUNK)
            at = self._buffer.find(self.newline, searched)
        if (at < 0 and len(self._buffer) > self._max) or at + 1 > self._max:
            if self._record:
                raise _Interrupted
            self._skip_long_line()
        if at < 0:
            raw, self._buffer = self._buffer, b""
            if not raw:
                self.record_hit_end = True
                raise StopIteration
            return raw
        raw, self._buffer = self._buffer[: at + 1], self._buffer[at + 1:]
        return raw

    def _skip_long_line(self) -> NoReturn:
        """Drop the rest of an over-long line chunk by chunk: it is never held whole."""
        skipped = 0
        while True:
            at = self._buffer.find(self.newline)
            if at >= 0:
                skipped += at + 1
                self._buffer = self._buffer[at + 1:]
                break
            skipped += len(self._buffer)
            self._buffer = b""
            if self.eof:
                break
            self.fill(_CHUNK)
        self.offset += skipped
        self.line += 1
        raise _LineTooLong(f"line {self.line} is longer than {self._max} bytes")

    def _decode(self, raw: bytes, start: int) -> str:
        skip = self.bom if start == 0 else 0
        body = raw[skip:]
        if b"\x00" in body:
            # The sample refuses NUL bytes as binary; further on they fail only their row.
            self._note(f"a NUL byte at byte offset {start + skip + body.index(0)} (line {self.line}): "
                       "binary data, not CSV text")
        try:
            return body.decode(self.encoding)
        except UnicodeDecodeError as exc:
            name = "UTF-8" if self.encoding == "utf-8" else "Windows-1252"
            self._note(f"invalid {name} bytes at byte offset {start + skip + exc.start} (line {self.line}); the "
                       f"start of the file was {name}, so the file mixes encodings: save it again as CSV UTF-8")
            return body.decode(self.encoding, errors="replace")

    def _note(self, error: str) -> None:
        """The record fails with the first problem found in its lines."""
        if self.record_error is None:
            self.record_error = error


class CsvReader:
    """Iterate :class:`CsvRow` objects from a binary stream.

    ``checkpoint``: continue a previous read; ``stream`` must then start at
    ``checkpoint.offset`` (an S3 GET with ``Range: bytes=<offset>-``).
    ``required_columns``: names (normalised like the header) every row needs; when the header
    lacks some, :attr:`missing_columns` lists them and every row carries an error naming them.

    A data record that cannot be read (a line over ``max_line_bytes``, bytes invalid in the
    encoding, broken quoting, a field over the csv module's limit) is still a row, with
    ``error`` saying why: reading goes on after it, so every row of the input is accounted for.
    Only the input as a whole (encoding, binary, header, row limit) raises :class:`CsvError`.
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
        self._source = source = _LineSource(stream, max_line_bytes)
        self.max_rows = max_rows
        self.blank_rows = 0
        self.rows = 0
        self._iterating = False
        if checkpoint is not None:
            self.encoding = source.encoding = checkpoint.encoding
            self.delimiter = checkpoint.delimiter
            source.newline = checkpoint.newline.encode()
            self.header = list(checkpoint.header)
            self.missing_columns = list(checkpoint.missing_columns)
            self._required = list(checkpoint.required)
            self.rows = checkpoint.rows
            self.blank_rows = checkpoint.blank_rows
            source.line = checkpoint.line
            source.offset = checkpoint.offset
            self._records = self._parse()
            return
        sample = source.fill(sample_bytes)
        if not sample:
            raise CsvError("the file is empty", reason=Reason.EMPTY)
        # Encoding first: UTF-16 text is full of NUL bytes but deserves its own message.
        self.encoding, source.bom = _detect_encoding(sample, source.eof)
        source.encoding = self.encoding
        reason = _looks_binary(sample)
        if reason:
            raise CsvError(reason, reason=Reason.BINARY)
        source.newline = b"\n" if b"\n" in sample else (b"\r" if b"\r" in sample else b"\n")
        complete = sample if source.eof else sample[: sample.rfind(source.newline) + 1] or sample
        text = complete[source.bom:].decode(self.encoding, errors="replace")
        self.delimiter = _sniff_delimiter(text)
        self._records = self._parse()
        self.header = self._read_header()
        required = [normalise_header(c) for c in required_columns]
        self.missing_columns = [c for c in required if c not in self.header]
        self._required = required

    # -- reading -------------------------------------------------------------------

    def _parse(self) -> Iterator[_Record]:
        """One record at a time; the source's ``offset`` is then the record's end. Strict
        parsing makes broken quoting an error instead of a field swallowing the lines after it;
        csv.reader starts afresh at each call, so it reads on after an error."""
        source = self._source
        reader = csv.reader(source, delimiter=self.delimiter, strict=True)
        while True:
            source.begin_record()
            try:
                cells = next(reader)
            except StopIteration:
                return
            except _LineTooLong as exc:
                yield _Record(source.record_line, [], str(exc), Reason.LINE_TOO_LONG)
            except (csv.Error, _Interrupted) as exc:
                yield self._malformed(exc)
            else:
                yield _Record(source.record_line, cells, source.record_error,
                              Reason.ENCODING if source.record_error else None)

    def _malformed(self, exc: csv.Error | _Interrupted) -> _Record:
        """A record strict parsing refused, or one cut by an over-long line. Over several lines,
        a quote opened on its first line is taken as never closed: that line fails and the
        lines after it are read again. On one line, a quote still open at the end of the input
        (or at an over-long line) fails too; otherwise the lenient reading the reader always
        had stands (``"a"b`` is ``ab``)."""
        source, line = self._source, self._source.record_line
        if source.give_back_all_but_first():
            why = f" ({exc})" if isinstance(exc, csv.Error) else ""
            return _Record(line, [], f"bad quoting: a quoted field on line {line} is not closed properly{why}; "
                           "the lines after it are read as rows of their own", Reason.MALFORMED)
        if source.record_hit_end or isinstance(exc, _Interrupted):
            return _Record(line, [], f"bad quoting: a quoted field on line {line} is never closed", Reason.MALFORMED)
        try:
            cells = next(csv.reader(source.record_lines, delimiter=self.delimiter))
        except (csv.Error, StopIteration):
            return _Record(line, [], f"malformed CSV: {exc}", Reason.MALFORMED)
        return _Record(line, cells, source.record_error, Reason.ENCODING if source.record_error else None)

    def _read_header(self) -> list[str]:
        for line, cells, error, code in self._records:
            if error is not None:
                raise CsvError(f"the header row cannot be read: {error}", reason=code or Reason.MALFORMED, line=line)
            if not any(c.strip() for c in cells):
                continue
            header = [normalise_header(c) or f"column_{i + 1}" for i, c in enumerate(cells)]
            seen: dict[str, int] = {}
            for i, name in enumerate(header):
                if name in seen:
                    raise CsvError(f"duplicate column {name!r} (columns {seen[name] + 1} and {i + 1})",
                                   reason=Reason.DUPLICATE_COLUMN, line=line)
                seen[name] = i
            return header
        raise CsvError("the file has no header row", reason=Reason.EMPTY)

    def __iter__(self) -> Iterator[CsvRow]:
        if self._iterating:
            raise RuntimeError("a CsvReader can be iterated once")
        self._iterating = True
        for record in self._records:
            if record.error is None and not any(c.strip() for c in record.cells):
                self.blank_rows += 1
                continue
            if self.max_rows is not None and self.rows >= self.max_rows:
                raise CsvRowLimitExceeded(
                    f"the CSV has more than {self.max_rows} rows (the limit is {self.max_rows}): "
                    "split it into smaller files", reason=Reason.ROW_LIMIT, line=record.line)
            self.rows += 1
            yield self._row(record)

    def _row(self, record: _Record) -> CsvRow:
        cells, width = record.cells, len(self.header)
        error, code = record.error, (record.code or Reason.MALFORMED) if record.error else None
        if error is None and self.missing_columns:
            error, code = f"missing required column(s): {', '.join(self.missing_columns)}", Reason.MISSING_COLUMNS
        if error is None and len(cells) > width and any(c.strip() for c in cells[width:]):
            error, code = f"row has {len(cells)} cells but the header has {width} columns", Reason.EXTRA_CELLS
        values = dict(zip(self.header, cells, strict=False))
        short = self.header[len(cells):]
        for name in short:
            values[name] = ""
        missing_cells = [n for n in short if n in self._required]
        if missing_cells and error is None:
            error, code = f"row has {len(cells)} cells; no value for {', '.join(missing_cells)}", Reason.MISSING_VALUES
        return CsvRow(number=self.rows, line=record.line, values=values, end_offset=self._source.offset, error=error,
                      error_code=code)

    def checkpoint(self) -> Checkpoint:
        """Where to continue after the last row yielded."""
        source = self._source
        return Checkpoint(offset=source.offset, rows=self.rows, line=source.line, blank_rows=self.blank_rows,
                          header=tuple(self.header), encoding=self.encoding, delimiter=self.delimiter,
                          newline=source.newline.decode(), missing_columns=tuple(self.missing_columns),
                          required=tuple(self._required))

    def require_columns(self) -> None:
        """Raise instead of failing row by row when required columns are missing."""
        if self.missing_columns:
            raise CsvError(f"missing required column(s): {', '.join(self.missing_columns)}",
                           reason=Reason.MISSING_COLUMNS, line=1)


def read_rows(data: bytes | BinaryReadable, **kwargs: Any) -> list[CsvRow]:
    """Convenience for small inputs (an inline ``csvData`` string encoded, a test)."""
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    return list(CsvReader(stream, **kwargs))
