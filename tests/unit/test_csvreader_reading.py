"""CSV reading: encodings, delimiters, quoting, headers, blank rows, limits, bad input."""

from __future__ import annotations

import codecs
import csv
import io

import pytest

from posterflow.formats.csvreader import (
    Checkpoint,
    CsvError,
    CsvReader,
    CsvRowLimitExceeded,
    escape_csv_cell,
    escape_csv_row,
    read_rows,
)


class Trickle(io.RawIOBase):
    """A stream that answers each read with at most a few bytes, like a slow network body."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self._data, self._pos, self._step = data, 0, step
        self.max_read = 0

    def read(self, amt: int = -1, /) -> bytes:
        self.max_read = max(self.max_read, amt)
        chunk = self._data[self._pos:self._pos + min(self._step, amt if amt >= 0 else self._step)]
        self._pos += len(chunk)
        return chunk


def test_utf8_with_bom_and_messy_header() -> None:
    data = codecs.BOM_UTF8 + "Username , Display  Name,RATING\r\nana,Ana Lía,5\r\nbo,Bo,4.5\r\n".encode()
    reader = CsvReader(io.BytesIO(data))
    rows = list(reader)
    assert reader.header == ["username", "display_name", "rating"]
    assert reader.encoding == "utf-8" and reader.delimiter == ","
    assert [r.values for r in rows] == [
        {"username": "ana", "display_name": "Ana Lía", "rating": "5"},
        {"username": "bo", "display_name": "Bo", "rating": "4.5"},
    ]
    assert [(r.number, r.line) for r in rows] == [(1, 2), (2, 3)]
    assert rows[-1].end_offset == len(data)


def test_cp1252_fallback() -> None:
    data = "name;city\nJosé;Zürich\nRenée;Besançon – Doubs\n".encode("cp1252")
    reader = CsvReader(io.BytesIO(data))
    rows = list(reader)
    assert reader.encoding == "cp1252" and reader.delimiter == ";"
    assert rows[1].values == {"name": "Renée", "city": "Besançon – Doubs"}


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiter_sniffing(delimiter: str) -> None:
    # Cells containing the other candidates must not confuse the choice.
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerows([["a", "b", "c"], ["1,5", "x;y", "tab\there"], ["2", "", "z"]])
    reader = CsvReader(io.BytesIO(out.getvalue().encode()))
    assert reader.delimiter == delimiter
    assert next(iter(reader)).values == {"a": "1,5", "b": "x;y", "c": "tab\there"}


def test_quoted_newlines_quotes_and_formulas_are_data() -> None:
    data = b'name,message,link\n"Doe, Jane","line one\nline two ""quoted""","=HYPERLINK(""http://x"",""y"")"\n'
    rows = read_rows(data)
    assert rows[0].values == {"name": "Doe, Jane", "message": 'line one\nline two "quoted"',
                              "link": '=HYPERLINK("http://x","y")'}
    assert rows[0].line == 2


def test_blank_rows_are_skipped_and_counted() -> None:
    data = b"\n\nname,n\n\na,1\n , \n,\nb,2\n\n"
    reader = CsvReader(io.BytesIO(data))
    rows = list(reader)
    assert [r.values["name"] for r in rows] == ["a", "b"]
    assert [(r.number, r.line) for r in rows] == [(1, 5), (2, 8)]
    assert reader.blank_rows == 4  # after the header: "", " , ", ",", "" (leading blank lines are not rows)
    assert reader.rows == 2


def test_row_limit_is_a_clear_error_after_the_allowed_rows() -> None:
    data = b"n\n" + b"".join(f"{i}\n".encode() for i in range(6))
    got: list[str] = []
    with pytest.raises(CsvRowLimitExceeded, match="more than 5 rows") as err:
        for row in CsvReader(io.BytesIO(data), max_rows=5):
            got.append(row.values["n"])
    assert got == ["0", "1", "2", "3", "4"]
    assert err.value.code == "row_limit" and err.value.line == 7


def test_missing_required_columns_fail_every_row_with_the_names() -> None:
    reader = CsvReader(io.BytesIO(b"Name,Rating\na,5\nb,4\n"), required_columns=["name", "Consumer Message", "rating"])
    assert reader.missing_columns == ["consumer_message"]
    rows = list(reader)
    assert len(rows) == 2
    assert all(r.error == "missing required column(s): consumer_message" for r in rows)
    with pytest.raises(CsvError, match="consumer_message"):
        reader.require_columns()


def test_ragged_rows_carry_an_error_instead_of_being_dropped() -> None:
    rows = read_rows(b"a,b,c\n1,2,3,4\n1,2,3,,\n1\n", required_columns=["a", "c"])
    assert rows[0].error == "row has 4 cells but the header has 3 columns"
    assert rows[1].error is None  # trailing empty cells, as spreadsheets export them
    assert rows[2].values == {"a": "1", "b": "", "c": ""}
    assert rows[2].error is not None and "no value for c" in rows[2].error


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00rest-of-an-xlsx", "binary", "xlsx"),
        (b"%PDF-1.7\n...", "binary", "PDF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary", "PNG"),
        (b"name,n\nab\x00cd,1\n", "binary", "NUL"),
        (bytes(range(1, 32)) * 20, "binary", "control"),
        (codecs.BOM_UTF16_LE + "a,b\n".encode("utf-16-le"), "encoding", "UTF-16"),
        (b"", "empty", "empty"),
        (b"\n\n \n", "empty", "header"),
        (b"a,b,a\n1,2,3\n", "duplicate_column", "'a'"),
    ],
)
def test_bad_input_is_refused_with_a_reason(data: bytes, code: str, words: str) -> None:
    with pytest.raises(CsvError) as err:
        read_rows(data)
    assert err.value.code == code
    assert words in str(err.value)


def test_a_late_encoding_error_fails_its_row_naming_the_line_and_offset() -> None:
    head = b"name,n\n" + b"".join(f"row{i},{i}\n".encode() for i in range(20))
    data = head + b"caf\xc3,9\nafter,10\n"  # a truncated UTF-8 sequence, after a UTF-8 sample
    rows = list(CsvReader(io.BytesIO(data), sample_bytes=32))
    assert len(rows) == 22 and rows[-1].values == {"name": "after", "n": "10"} and rows[-1].error is None
    bad = rows[20]
    assert bad.line == 22 and bad.error is not None
    assert f"byte offset {len(head) + 3}" in bad.error and "line 22" in bad.error and "UTF-8" in bad.error


def test_reads_in_bounded_chunks_from_a_trickling_stream() -> None:
    data = b"a,b\n" + b"".join(f"{i},x\n".encode() for i in range(2000))
    stream = Trickle(data)
    rows = list(CsvReader(stream))
    assert len(rows) == 2000 and rows[-1].values == {"a": "1999", "b": "x"}
    assert stream.max_read <= 64 * 1024


def test_an_endless_last_line_fails_its_row() -> None:
    rows = read_rows(b"a,b\n1,2\n" + b"x" * 5000, max_line_bytes=1000)
    assert len(rows) == 2 and rows[0].error is None
    assert rows[1].line == 3 and rows[1].error == "line 3 is longer than 1000 bytes"


def test_an_over_long_header_is_refused() -> None:
    with pytest.raises(CsvError, match="longer than") as err:
        read_rows(b"a," + b"x" * 5000 + b"\n1,2\n", max_line_bytes=1000)
    assert err.value.code == "line_too_long" and err.value.line == 1


def test_old_mac_line_endings() -> None:
    rows = read_rows(b"a,b\r1,2\r3,4\r")
    assert [r.values for r in rows] == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]


def test_resume_from_a_checkpoint_with_a_ranged_read() -> None:
    data = ("\ufeffName;Note\n" + "".join(f'n{i};"multi\nline {i}"\n' for i in range(10))).encode()
    first = CsvReader(io.BytesIO(data), required_columns=["name"])
    head = []
    for row in first:
        head.append(row)
        if row.number == 4:
            break
    cp = Checkpoint.from_dict(first.checkpoint().to_dict())
    assert cp.offset == head[-1].end_offset and cp.rows == 4
    rest = list(CsvReader(io.BytesIO(data[cp.offset:]), checkpoint=cp))
    assert [r.number for r in rest] == list(range(5, 11))
    assert rest[0].values == {"name": "n4", "note": "multi\nline 4"}
    assert rest[0].line == head[-1].line + 2 and rest[-1].end_offset == len(data)


@pytest.mark.parametrize(
    ("cell", "escaped"),
    [("=1+1", "'=1+1"), ("+41 79", "'+41 79"), ("-5", "'-5"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
     ("\rx", "'\rx"), ("plain", "plain"), ("a=b", "a=b"), ("", ""), (None, "")],
)
def test_escape_csv_cell(cell: str | None, escaped: str) -> None:
    assert escape_csv_cell(cell) == escaped


def test_escape_csv_row() -> None:
    assert escape_csv_row(["=HYPERLINK(\"http://x\")", 3, "ok"]) == ["'=HYPERLINK(\"http://x\")", "3", "ok"]
