"""Properties of the CSV reader beyond csv.writer round trips (test_csvreader_roundtrip.py):
any bytes at all are either rows or a CsvError with a reason (never another exception),
and cells from the whole of Unicode round-trip when every cell is quoted, with and without a BOM (UTF-16 is
refused by design with a reason)."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from posterflow.formats.csvreader import CsvError, CsvReader

HEADER = ["name", "message"]
# Every code point a cell may hold: tab/CR/LF are data inside quotes; other controls mark a
# file as binary by design, and a BOM inside a cell is out of scope (it is stripped at the start).
any_cell = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufeff")
    | st.sampled_from(["\t", "\n", "\r", '"', ",", ";", "=", "@", "\u2028", "\u00a0"]),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400) | st.text(max_size=200).map(str.encode))
def test_any_bytes_give_rows_or_a_reasoned_csv_error(data: bytes) -> None:
    try:
        rows = list(CsvReader(io.BytesIO(data), sample_bytes=64))
    except CsvError as exc:
        assert exc.reason and exc.code
        return
    for row in rows:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in row.values.items())
        assert row.number >= 1 and row.line >= 2


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.lists(any_cell, min_size=2, max_size=2), max_size=8),
       encoding=st.sampled_from(["utf-8", "utf-8-sig"]))
def test_quoted_unicode_cells_round_trip(rows: list[list[str]], encoding: str) -> None:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    data = out.getvalue().encode(encoding)
    got = list(CsvReader(io.BytesIO(data), sample_bytes=64))
    kept = [r for r in rows if any(c.strip() for c in r)]
    assert [[row.values[h] for h in HEADER] for row in got] == kept
    assert all(row.error is None for row in got)
