"""Damaged archives and hostile names never escape as anything but this module's errors."""

from __future__ import annotations

import unicodedata

import photos
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posterflow.formats import zipindex as z

_PHOTO = photos.jpeg(photos.astronaut().resize((64, 64)))
_ARCHIVES = [
    photos.zip_of([("a/one.jpg", _PHOTO), ("b/two.jpg", _PHOTO), ("notes.txt", b"hi")]),
    photos.build_zip([photos.RawEntry("x.jpg", _PHOTO), photos.RawEntry("y.png", _PHOTO, method=0)], zip64=True),
    photos.streamed_zip([("s.jpg", _PHOTO)]),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    archive=st.sampled_from(range(len(_ARCHIVES))),
    edits=st.lists(st.tuples(st.integers(min_value=1, max_value=400), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.integers(min_value=0, max_value=40),
)
def test_damaged_directory_or_headers_raise_only_zip_errors(
    archive: int, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(_ARCHIVES[archive])
    for back, value in edits:  # the directory and end records live in the last few hundred bytes
        data[-min(back, len(data))] = value
    if cut:
        data = data[:-cut]
    reader = z.BytesRangeReader(bytes(data))
    try:
        directory = z.open_zip(reader)
        entries = [e for e in z.iter_entries(reader, directory) if e.verdict is z.Verdict.IMAGE]
    except z.BadZip:
        return
    for entry in entries:
        try:
            content = z.read_entry(reader, entry)
        except z.BadEntry:
            continue
        # Every archive holds only copies of one photo, and reads are CRC-checked: whatever
        # the damage, a read that succeeds returns that photo.
        assert content == _PHOTO


@settings(max_examples=300, deadline=None)
@given(name=st.text(min_size=0, max_size=300), index=st.integers(min_value=0, max_value=10**7))
def test_output_names_are_always_safe(name: str, index: int) -> None:
    out = z.safe_output_name(name, index)
    assert "/" not in out and "\\" not in out and ".." not in out
    assert out.split("-", 1)[0] == f"{index:07d}"
    assert unicodedata.is_normalized("NFKC", out)
    assert not any(unicodedata.category(ch)[0] == "C" for ch in out)
    assert len(out.encode("utf-8")) < 1024  # S3's key limit, with room for a prefix
