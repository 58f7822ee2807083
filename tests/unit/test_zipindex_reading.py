"""Reading good archives through ranged reads: every writer's layout, ZIP64, resumption, S3."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from collections.abc import Iterator

import photos
import pytest

from posterflow import aws
from posterflow.formats import zipindex as z


def _entries(data: bytes, **kwargs: object) -> list[z.ZipEntry]:
    reader = z.BytesRangeReader(data)
    return list(z.iter_entries(reader, z.open_zip(reader), **kwargs))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def photo() -> bytes:
    return photos.jpeg()


@pytest.mark.parametrize(
    "writer",
    ["stdlib_deflated", "stdlib_stored", "stream_zip_64", "stream_zip_32", "hand_zip64", "hand_prefixed"],
)
def test_every_writer_round_trips(writer: str, photo: bytes) -> None:
    files = [("a/one.jpg", photo), ("b/two.png", photos.png_alpha()), ("three.webp", photos.webp())]
    data = {
        "stdlib_deflated": lambda: photos.zip_of(files),
        "stdlib_stored": lambda: photos.zip_of(files, compression=zipfile.ZIP_STORED),
        "stream_zip_64": lambda: photos.streamed_zip(files, zip64=True),
        "stream_zip_32": lambda: photos.streamed_zip(files, zip64=False),
        "hand_zip64": lambda: photos.build_zip([photos.RawEntry(n, d) for n, d in files], zip64=True),
        "hand_prefixed": lambda: photos.build_zip(
            [photos.RawEntry(n, d, method=photos.STORED) for n, d in files], prefix=b"MZ" * 5000, comment=b"sfx"
        ),
    }[writer]()
    reader = z.BytesRangeReader(data)
    directory = z.open_zip(reader)
    entries = list(z.iter_entries(reader, directory))
    assert [e.name for e in entries] == [n for n, _ in files]
    assert [e.index for e in entries] == [0, 1, 2]
    assert all(e.verdict is z.Verdict.IMAGE for e in entries)
    for entry, (_, content) in zip(entries, files, strict=True):
        assert z.read_entry(reader, entry) == content
    if writer.startswith("stream_zip_64") or writer == "hand_zip64":
        assert directory.zip64
    if writer == "hand_prefixed":
        assert directory.base_offset == 10_000


def test_entries_agree_with_the_standard_library(photo: bytes) -> None:
    data = photos.junk_and_photos_zip(photo)
    ours = _entries(data)
    theirs = zipfile.ZipFile(io.BytesIO(data)).infolist()
    assert [(e.name, e.compressed_size, e.uncompressed_size, e.crc, e.method) for e in ours] == [
        (i.filename, i.compress_size, i.file_size, i.CRC, i.compress_type) for i in theirs
    ]
    assert [e.local_header_offset for e in ours] == [i.header_offset for i in theirs]


def test_index_reads_only_the_tail_and_directory(photo: bytes) -> None:
    data = photos.zip_of([(f"p{i}.jpg", photo) for i in range(40)], compression=zipfile.ZIP_STORED)
    reader = z.BytesRangeReader(data)
    summary = z.scan(reader)
    assert summary.images == 40
    # The archive is ~2.7 MB; indexing it must touch only its last ~70 KB (tail + directory).
    assert reader.bytes_read < 80_000 < len(data) // 30
    assert reader.requests <= 3


def test_read_entry_is_one_ranged_read_of_its_own_bytes(photo: bytes) -> None:
    data = photos.zip_of([("a.jpg", photo), ("b.jpg", photo), ("c.jpg", photo)])
    entries = _entries(data)
    reader = z.BytesRangeReader(data)
    assert z.read_entry(reader, entries[1]) == photo
    assert reader.requests == 1
    assert reader.bytes_read < entries[1].compressed_size + 400


def test_entry_survives_a_queue_message(photo: bytes) -> None:
    data = photos.zip_of([("x/y.jpg", photo)])
    entry = _entries(data)[0]
    message = entry.model_dump_json()
    again = z.ZipEntry.model_validate_json(message)
    assert again == entry
    assert z.read_entry(z.BytesRangeReader(data), again) == photo


def test_cp437_names_and_the_unicode_path_field() -> None:
    # Legacy archivers write unmappable characters as "?" and may add the real name in an
    # Info-ZIP Unicode Path field, trusted only while its CRC matches the legacy name.
    legacy = b"??.jpg"
    real = "東京.jpg".encode()

    def unicode_path(crc: int) -> bytes:
        return struct.pack("<HHBI", 0x7075, 5 + len(real), 1, crc) + real

    data = photos.build_zip(
        [
            photos.RawEntry(b"M\x81ller.jpg", b"a"),  # 0x81 is u-umlaut in CP437
            photos.RawEntry(legacy, b"b", central_extra=unicode_path(zlib.crc32(legacy))),
            photos.RawEntry(legacy, b"c", central_extra=unicode_path(12345)),
        ]
    )
    assert [e.name for e in _entries(data)] == ["Müller.jpg", "東京.jpg", "??.jpg"]


def test_directory_is_read_in_bounded_chunks() -> None:
    """Memory stays at one chunk however large the directory (a 5 GB ZIP's splitter)."""
    data = photos.zip64_many(5000)

    class Recording(z.BytesRangeReader):
        largest = 0

        def read(self, offset: int, length: int) -> bytes:
            self.largest = max(self.largest, length)
            return super().read(offset, length)

    reader = Recording(data)
    directory = z.open_zip(reader)
    reader.largest = 0
    assert sum(1 for _ in z.iter_entries(reader, directory, chunk_size=8192)) == 5000
    assert reader.largest <= 8192 < directory.cd_size


@pytest.fixture(scope="module")
def stdlib_zip64() -> bytes:
    # More entries than a 16-bit count holds: the standard library writes ZIP64 end records.
    return photos.zip_of([(f"p/{i:05d}.jpg", b"x") for i in range(70_000)], compression=zipfile.ZIP_STORED)


def test_zip64_entry_count_from_another_writer(stdlib_zip64: bytes) -> None:
    reader = z.BytesRangeReader(stdlib_zip64)
    summary = z.scan(reader)
    assert summary.directory.zip64
    assert summary.entries == summary.images == 70_000
    cursor = next(iter(z.iter_entries(reader, summary.directory))).cursor_after()
    assert cursor.index == 1
    skip_to = z.ZipCursor(index=69_999, cd_offset=summary.directory.cd_end - (46 + len("p/69999.jpg")))
    last = list(z.iter_entries(reader, summary.directory, start=skip_to))
    assert [e.index for e in last] == [69_999]


def test_resumed_iteration_has_no_gaps_or_duplicates(stdlib_zip64: bytes) -> None:
    """Split the way the splitter does: a few entries per invocation, the cursor checkpointed
    as JSON between invocations, each invocation re-opening the archive."""
    rng = random.Random(5)
    seen: list[int] = []
    checkpoint = z.ZipCursor().model_dump_json()
    while True:
        reader = z.BytesRangeReader(stdlib_zip64)
        directory = z.open_zip(reader)
        cursor = z.ZipCursor.model_validate_json(checkpoint)
        batch = rng.randint(1, 9000)
        taken = 0
        for entry in z.iter_entries(reader, directory, start=cursor):
            seen.append(entry.index)
            checkpoint = entry.cursor_after().model_dump_json()
            taken += 1
            if taken == batch:
                break
        if taken < batch:
            break
    assert seen == list(range(70_000))


def test_cursor_start_matches_full_iteration(photo: bytes) -> None:
    data = photos.junk_and_photos_zip(photo)
    full = _entries(data)
    resumed = _entries(data, start=full[6].cursor_after())
    assert resumed == full[7:]
    assert resumed[-1].uncompressed_through == full[-1].uncompressed_through


def test_cursor_outside_the_directory_is_refused(photo: bytes) -> None:
    data = photos.zip_of([("a.jpg", photo)])
    with pytest.raises(ValueError):
        _entries(data, start=z.ZipCursor(index=0, cd_offset=3))


def test_hand_zip64_many_entries_in_small_chunks() -> None:
    data = photos.zip64_many(3000)
    reader = z.BytesRangeReader(data)
    summary = z.scan(reader, chunk_size=4096)
    assert summary.directory.zip64 and summary.images == 3000
    entries = list(z.iter_entries(reader, summary.directory, chunk_size=4096))
    assert z.read_entry(reader, entries[2999]) == b"x"
    assert len({z.safe_output_name(e.name, e.index) for e in entries}) == 3000


@pytest.mark.slow
def test_a_million_entries_split_in_checkpointed_runs() -> None:
    archive = photos.SyntheticZip(count=1_000_000, entry_size=1)
    count = 0
    cursor = z.ZipCursor()
    last = -1
    while True:
        reader = archive
        run = 0
        for entry in z.iter_entries(reader, z.open_zip(reader), start=cursor):
            assert entry.index == last + 1
            last = entry.index
            cursor = entry.cursor_after()
            count += 1
            run += 1
            if run == 250_000:
                break
        if run < 250_000:
            break
    assert count == 1_000_000


# --- S3 -------------------------------------------------------------------------------------


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto import mock_aws

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    aws.reset_clients()
    with mock_aws():
        aws.client("s3").create_bucket(Bucket="photos")
        yield "photos"
    aws.reset_clients()


def test_s3_reader_indexes_and_reads_with_ranges(s3_bucket: str, photo: bytes) -> None:
    data = photos.junk_and_photos_zip(photo)
    aws.client("s3").put_object(Bucket=s3_bucket, Key="uploads/team.zip", Body=data)
    reader = z.S3RangeReader(s3_bucket, "uploads/team.zip")
    summary = z.scan(reader)
    assert (summary.images, summary.skipped, summary.failed) == (7, 6, 0)
    assert reader.etag
    assert reader.bytes_read < 70_000 < len(data) // 7  # the 64 KiB tail read, nothing more
    first = next(e for e in z.iter_entries(reader, summary.directory) if e.verdict is z.Verdict.IMAGE)
    # The worker knows only the message: no HEAD, one ranged GET.
    worker = z.S3RangeReader(s3_bucket, "uploads/team.zip")
    assert z.read_entry(worker, first) == photo
    assert worker.requests == 1


def test_s3_reader_notices_a_replaced_object(s3_bucket: str, photo: bytes) -> None:
    s3 = aws.client("s3")
    s3.put_object(Bucket=s3_bucket, Key="u.zip", Body=photos.zip_of([("a.jpg", photo)]))
    reader = z.S3RangeReader(s3_bucket, "u.zip")
    directory = z.open_zip(reader)
    s3.put_object(Bucket=s3_bucket, Key="u.zip", Body=photos.zip_of([("b.jpg", photo), ("c.jpg", photo)]))
    with pytest.raises(z.BadZip) as caught:
        list(z.iter_entries(reader, directory))
    assert caught.value.reason == "object_changed"


def test_worker_read_of_a_replaced_object_fails_the_entry(s3_bucket: str, photo: bytes) -> None:
    s3 = aws.client("s3")
    s3.put_object(Bucket=s3_bucket, Key="u.zip", Body=photos.zip_of([("a.jpg", photo)]))
    splitter = z.S3RangeReader(s3_bucket, "u.zip")
    entry = next(iter(z.iter_entries(splitter, z.open_zip(splitter))))
    s3.put_object(Bucket=s3_bucket, Key="u.zip", Body=photos.zip_of([("b.jpg", photo)]))
    worker = z.S3RangeReader(s3_bucket, "u.zip", etag=splitter.etag)
    with pytest.raises(z.BadEntry) as caught:
        z.read_entry(worker, entry)
    assert caught.value.reason == "object_changed"


def test_s3_reader_past_the_end_is_empty(s3_bucket: str) -> None:
    aws.client("s3").put_object(Bucket=s3_bucket, Key="small", Body=b"0123456789")
    reader = z.S3RangeReader(s3_bucket, "small")
    assert reader.size() == 10
    assert reader.read(4, 3) == b"456"
    assert reader.read(8, 10) == b"89"
    assert reader.read(20, 5) == b""


def test_a_5_gb_zip_is_indexed_and_read_in_little_memory() -> None:
    """2,500 photos of 2 MB (5 GB, offsets past 4 GiB so ZIP64 is real): the full scan stays
    within a few MB of Python allocations, and the last entry is read from its offset."""
    import tracemalloc

    archive = photos.SyntheticZip(count=2_500, entry_size=2_000_000)
    assert archive.size() > 5_000_000_000
    tracemalloc.start()
    try:
        summary = z.scan(archive)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.directory.zip64 and summary.images == 2_500
    assert summary.uncompressed_total == 5_000_000_000
    # tracemalloc counts every thread; a session's local cloud may be running beside this test.
    assert peak < 64 * 1024 * 1024
    *_, last = z.iter_entries(archive, summary.directory)
    assert last.local_header_offset > 2**32
    assert z.read_entry(archive, last) == bytes(2_000_000)
