"""A worker's batch of entries is fetched in runs: neighbours share one ranged read, the bytes
are the same as reading each entry alone, and a run that cannot be fetched leaves its entries
to their own reads (which then fail or succeed exactly as before)."""

from __future__ import annotations

import random

import photos
import pytest

from posterflow.formats import zipindex as z


class FailingOnce(z.BytesRangeReader):
    """Fails the first read longer than ``threshold`` bytes (the prefetch), as S3 might."""

    def __init__(self, data: bytes, threshold: int) -> None:
        super().__init__(data)
        self.threshold = threshold
        self.failed = False

    def read(self, offset: int, length: int) -> bytes:
        if length > self.threshold and not self.failed:
            self.failed = True
            raise z.BadZip("object_changed", "changed while being read")
        return super().read(offset, length)


@pytest.fixture(scope="module")
def archive() -> bytes:
    rng = random.Random(7)
    files = [(f"people/p{i:02d}.jpg", photos.jpeg(quality=60 + i) + rng.randbytes(2000)) for i in range(12)]
    return photos.zip_of(files)


def _entries(data: bytes) -> list[z.ZipEntry]:
    reader = z.BytesRangeReader(data)
    return list(z.iter_entries(reader, z.open_zip(reader)))


def test_neighbours_share_one_read_and_give_the_same_bytes(archive: bytes) -> None:
    entries = _entries(archive)
    expected = [z.read_entry(z.BytesRangeReader(archive), e) for e in entries]
    inner = z.BytesRangeReader(archive)
    reader = z.PrefetchingReader(inner)
    assert reader.prefetch(entries[:10]) == 1
    assert [z.read_entry(reader, e) for e in entries[:10]] == expected[:10]
    assert inner.requests == 1  # ten photos, one ranged read
    assert z.read_entry(reader, entries[11]) == expected[11]  # not prefetched: read alone
    assert inner.requests == 2


def test_gaps_and_the_memory_budget_split_the_runs(archive: bytes) -> None:
    entries = _entries(archive)
    spaced = entries[0:3] + entries[8:11]  # two groups, five entries apart
    gap = entries[8].local_header_offset - sum(z.entry_span(entries[2]))
    inner = z.BytesRangeReader(archive)
    assert z.PrefetchingReader(inner).prefetch(spaced, max_gap=gap - 1) == 2
    assert z.PrefetchingReader(inner).prefetch(spaced, max_gap=gap) == 1
    one_entry = z.entry_span(entries[0])[1]
    budgeted = z.PrefetchingReader(z.BytesRangeReader(archive))
    assert budgeted.prefetch(entries, max_bytes=3 * one_entry) == 1  # fits about three of twelve
    assert [z.read_entry(budgeted, e) for e in entries] == [z.read_entry(z.BytesRangeReader(archive), e)
                                                           for e in entries]


def test_a_failed_prefetch_leaves_each_entry_to_its_own_read(archive: bytes) -> None:
    entries = _entries(archive)
    inner = FailingOnce(archive, threshold=2 * z.entry_span(entries[0])[1])
    reader = z.PrefetchingReader(inner)
    assert reader.prefetch(entries[:5]) == 0 and inner.failed
    assert [z.read_entry(reader, e) for e in entries[:5]] == [z.read_entry(z.BytesRangeReader(archive), e)
                                                              for e in entries[:5]]
    assert inner.requests == 5


def test_a_single_entry_or_the_archive_end_costs_no_extra_read(archive: bytes) -> None:
    entries = _entries(archive)
    inner = z.BytesRangeReader(archive)
    reader = z.PrefetchingReader(inner)
    assert reader.prefetch(entries[5:6]) == 0 and inner.requests == 0
    last_two = entries[-2:]
    assert reader.prefetch(last_two) == 1
    assert [z.read_entry(reader, e) for e in last_two] == [z.read_entry(z.BytesRangeReader(archive), e)
                                                           for e in last_two]
