"""Rows that cannot be read are rows with an error, never lost: over-long lines, bad bytes,
broken quoting, NUL bytes, over-long fields. Reading goes on after each, and a checkpoint
taken anywhere (even right after a row whose lines were given back) resumes exactly."""

from __future__ import annotations

import io
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from posterflow.formats.csvreader import Checkpoint, CsvReader, CsvRow, read_rows
from tests.unit.test_csvreader_reading import Trickle  # a stream that answers reads a little at a time

HEADER = b"username,score\n"


def _good(start: int, count: int) -> bytes:
    return b"".join(f"user{i},{i}\n".encode() for i in range(start, start + count))


def _summary(rows: list[CsvRow]) -> list[tuple[int, int, str | None]]:
    return [(r.number, r.line, r.error) for r in rows if r.error]


def test_an_over_long_line_fails_alone_and_reading_goes_on() -> None:
    data = HEADER + _good(0, 150) + b"huge," + b"x" * 5000 + b"\n" + _good(150, 10)
    stream = Trickle(data, step=512)
    reader = CsvReader(stream, max_line_bytes=1000, sample_bytes=256)
    rows = list(reader)
    assert len(rows) == 161 and reader.rows == 161
    assert _summary(rows) == [(151, 152, "line 152 is longer than 1000 bytes")]
    assert rows[151].values == {"username": "user150", "score": "150"} and rows[151].line == 153
    assert rows[-1].end_offset == len(data)
    assert stream.max_read <= 64 * 1024  # the long line streams by, it is never held whole


def test_an_over_long_line_inside_a_quoted_field_is_a_row_of_its_own() -> None:
    data = HEADER + b'a,"one\ntwo\n' + b"x" * 3000 + b'\nend"\nb,2\n'
    rows = read_rows(data, max_line_bytes=1000)
    assert [r.line for r in rows] == [2, 3, 4, 5, 6]
    assert rows[0].error is not None and "bad quoting" in rows[0].error
    assert rows[2].error == "line 4 is longer than 1000 bytes"
    # The lines around the skipped one are read as rows of their own: nothing vanishes silently.
    assert [r.values["username"] for r in rows] == ["", "two", "", 'end"', "b"]


def test_bytes_invalid_in_the_encoding_fail_only_their_row() -> None:
    data = HEADER + _good(0, 30) + b"Jos\xe9,1\n" + _good(30, 3)
    rows = list(CsvReader(io.BytesIO(data), sample_bytes=64))
    assert len(rows) == 34
    [(number, line, error)] = _summary(rows)
    assert (number, line) == (31, 32) and error is not None and "invalid UTF-8" in error
    assert rows[30].values["username"] == "Jos\ufffd"  # replaced for the record, never used as data


def test_an_unclosed_quote_fails_its_line_and_the_lines_it_swallowed_are_rows() -> None:
    data = HEADER + b'alice,10\n"bob,5\ncarol,7\ndave,8\n'
    rows = read_rows(data)
    assert [r.values["username"] for r in rows] == ["alice", "", "carol", "dave"]
    assert rows[1].line == 3 and rows[1].error is not None and "bad quoting" in rows[1].error
    assert [r.error for r in rows[2:]] == [None, None]


def test_a_quote_closed_lines_later_by_junk_fails_only_its_first_line() -> None:
    data = HEADER + b'"bob,5\ncarol,7\n"dave" x,8\nerin,9\n'
    rows = read_rows(data)
    assert [r.line for r in rows] == [2, 3, 4, 5]
    assert rows[0].error is not None and "line 2" in rows[0].error
    assert rows[1].values == {"username": "carol", "score": "7"} and rows[1].error is None
    assert rows[2].values == {"username": "dave x", "score": "8"}  # one line: read leniently, as always
    assert rows[3].values == {"username": "erin", "score": "9"}


def test_a_runaway_quote_over_the_field_limit_gives_its_lines_back() -> None:
    lines = _good(0, 20_000)  # far over csv's 128 KiB field limit once swallowed
    data = HEADER + b'"stray,1\n' + lines + b"last,2\n"
    rows = read_rows(data)
    assert len(rows) == 20_002
    assert [r.number for r in rows if r.error] == [1]
    assert rows[-1].values == {"username": "last", "score": "2"}


def test_an_over_long_field_on_one_line_fails_its_row() -> None:
    data = HEADER + b'a,"' + b"x" * 200_000 + b'"\nb,2\n'
    rows = read_rows(data)
    assert len(rows) == 2 and rows[0].error is not None and "field" in rows[0].error
    assert rows[1].values == {"username": "b", "score": "2"}


def test_a_nul_byte_after_the_sample_fails_its_row() -> None:
    data = HEADER + _good(0, 30) + b"ev\x00il,1\n" + _good(30, 1)
    rows = list(CsvReader(io.BytesIO(data), sample_bytes=64))
    assert len(rows) == 32 and [r.line for r in rows if r.error] == [32]


def test_crlf_bom_quoted_newline_blank_line_and_extra_column_are_all_accounted_for() -> None:
    data = ("\ufeffUsername,Score\r\n"
            "alice,1\r\n"
            "\r\n"
            "\"carol\r\nsmith\",2\r\n"
            "dave,3,extra\r\n"
            "erin,4\r\n").encode()
    reader = CsvReader(io.BytesIO(data), required_columns=["username", "score"])
    rows = list(reader)
    assert [r.values["username"] for r in rows] == ["alice", "carol\r\nsmith", "dave", "erin"]
    assert [r.line for r in rows if r.error] == [6]  # the extra column fails its row
    assert reader.blank_rows == 1 and rows[-1].end_offset == len(data)


# Lines of one data row each, some of them unreadable: the reader must give exactly one row per
# line, failed exactly where the bad ones are, and a resume from any row must agree.
BAD_LINES = {
    "long": b"x," + b"y" * 300 + b"\n",
    "bytes": b"caf\xc3,1\n",
    "nul": b"a\x00b,1\n",
    "quote": b'"open,1\n',
}
line_kinds = st.lists(st.sampled_from(["good", "good", "good", *BAD_LINES]), min_size=1, max_size=25)


def _file(kinds: list[str]) -> bytes:
    body = b"".join(BAD_LINES.get(k, f"u{i},{i}\n".encode()) for i, k in enumerate(kinds))
    return HEADER + _good(1000, 8) + body  # a clean sample first, so the encoding is UTF-8


def _read(data: bytes) -> list[CsvRow]:
    return list(CsvReader(io.BytesIO(data), max_line_bytes=200, sample_bytes=64))


@settings(max_examples=200, deadline=None)
@given(kinds=line_kinds)
def test_every_line_is_one_row_and_only_the_bad_ones_fail(kinds: list[str]) -> None:
    rows = _read(_file(kinds))[8:]
    assert len(rows) == len(kinds)
    assert [r.error is not None for r in rows] == [k != "good" for k in kinds]


@settings(max_examples=150, deadline=None)
@given(kinds=line_kinds, stop=st.integers(min_value=0, max_value=35))
def test_resuming_after_any_row_reads_each_row_exactly_once(kinds: list[str], stop: int) -> None:
    data = _file(kinds)
    whole = _read(data)
    first = CsvReader(io.BytesIO(data), max_line_bytes=200, sample_bytes=64)
    head = list(itertools.islice(first, stop))
    cp = Checkpoint.from_dict(first.checkpoint().to_dict())
    rest = list(CsvReader(io.BytesIO(data[cp.offset:]), checkpoint=cp, max_line_bytes=200))
    assert [(r.number, r.line, r.values, r.error) for r in head + rest] == \
        [(r.number, r.line, r.values, r.error) for r in whole]
