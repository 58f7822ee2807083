"""Bad archives and bad entries: each refused with a reason, bombs before inflating."""

from __future__ import annotations

import struct
import zipfile

import photos
import pytest

from posterflow.formats import zipindex as z


class CountingReader(z.BytesRangeReader):
    """Records every range so a test can prove which bytes were (not) touched."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.ranges: list[tuple[int, int]] = []

    def read(self, offset: int, length: int) -> bytes:
        self.ranges.append((offset, length))
        return super().read(offset, length)


@pytest.fixture(scope="module")
def photo() -> bytes:
    return photos.jpeg()


def _open(data: bytes, limits: z.ZipLimits = z.DEFAULT_LIMITS) -> z.ZipSummary:
    return z.scan(z.BytesRangeReader(data), limits)


# --- the archive as a whole -----------------------------------------------------------------


def test_a_jpeg_named_zip_is_not_a_zip(photo: bytes) -> None:
    with pytest.raises(z.BadZip) as caught:
        _open(photo)
    assert caught.value.reason == "not_a_zip"


def test_empty_and_tiny_files() -> None:
    with pytest.raises(z.BadZip) as caught:
        _open(b"")
    assert caught.value.reason == "empty"
    with pytest.raises(z.BadZip) as caught:
        _open(b"PK\x03\x04")
    assert caught.value.reason == "not_a_zip"


def test_truncated_zip_lost_its_end_record(photo: bytes) -> None:
    data = photos.zip_of([("a.jpg", photo), ("b.jpg", photo)])
    with pytest.raises(z.BadZip) as caught:
        _open(data[: len(data) - 30])
    assert caught.value.reason == "not_a_zip"


def test_directory_pointing_into_garbage_is_corrupt(photo: bytes) -> None:
    data = bytearray(photos.zip_of([("a.jpg", photo), ("b.jpg", photo)]))
    cd_offset = struct.unpack_from("<I", data, len(data) - 6)[0]
    data[cd_offset : cd_offset + 4] = b"XXXX"
    with pytest.raises(z.BadZip) as caught:
        _open(bytes(data))
    assert caught.value.reason == "corrupt"


def test_second_directory_record_damaged(photo: bytes) -> None:
    data = bytearray(photos.zip_of([("a.jpg", photo), ("b.jpg", photo)]))
    second = data.rfind(b"PK\x01\x02")
    data[second : second + 4] = b"PK\x09\x09"
    with pytest.raises(z.BadZip) as caught:
        _open(bytes(data))
    assert caught.value.reason == "corrupt"
    assert "record 1" in caught.value.message


def test_directory_size_inconsistent_with_count(photo: bytes) -> None:
    data = photos.build_zip([photos.RawEntry("a.jpg", photo)], declared_count=500)
    with pytest.raises(z.BadZip) as caught:
        _open(data)
    assert caught.value.reason == "corrupt"


def test_spanned_archives_are_refused(photo: bytes) -> None:
    data = bytearray(photos.zip_of([("a.jpg", photo)]))
    eocd = data.rfind(b"PK\x05\x06")
    struct.pack_into("<H", data, eocd + 4, 2)  # "this is disk 2"
    with pytest.raises(z.BadZip) as caught:
        _open(bytes(data))
    assert caught.value.reason == "spanned"


# --- bombs: refused from declared sizes, before inflating -----------------------------------


def test_too_many_entries_refused_from_the_end_record_alone() -> None:
    data = photos.zip64_many(50)
    reader = CountingReader(data)
    with pytest.raises(z.ZipBomb) as caught:
        z.open_zip(reader, z.ZipLimits(max_entries=49))
    assert caught.value.reason == "too_many_entries"
    assert len(reader.ranges) == 1  # only the tail was read


def test_per_entry_size_over_limit_fails_that_entry_only(photo: bytes) -> None:
    data = photos.build_zip(
        [photos.RawEntry("ok.jpg", photo), photos.RawEntry("huge.jpg", b"\x00" * 300_000, method=photos.STORED)]
    )
    summary = _open(data, z.ZipLimits(max_entry_size=200_000))
    assert (summary.images, summary.failed) == (1, 1)
    assert summary.reasons == {"entry_too_large": 1}


def test_single_entry_bomb_refuses_the_archive() -> None:
    data = photos.deflate_bomb_zip(20 * 1024 * 1024)
    reader = CountingReader(data)
    with pytest.raises(z.ZipBomb) as caught:
        z.scan(reader)
    assert caught.value.reason == "compression_ratio"
    assert all(offset >= len(data) - 70_000 for offset, _ in reader.ranges)  # the data was never read


def test_entry_compression_ratio_bomb_among_photos_fails_that_entry(photo: bytes) -> None:
    # Enough real photos that the archive as a whole is within the overall ratio.
    stored = [photos.RawEntry(f"{i}.jpg", photo, method=photos.STORED) for i in range(6)]
    data = photos.build_zip([photos.RawEntry("bomb.jpg", b"\x00" * 20 * 1024 * 1024), *stored])
    reader = CountingReader(data)
    entry = next(iter(z.iter_entries(reader, z.open_zip(reader))))
    assert entry.verdict is z.Verdict.FAIL
    assert entry.reason == "compression_ratio"
    before = len(reader.ranges)
    with pytest.raises(z.BadEntry) as caught:
        z.read_entry(reader, entry)
    assert caught.value.reason == "compression_ratio"
    assert len(reader.ranges) == before  # refused without reading the data
    assert z.scan(reader).images == 6


def test_total_declared_size_over_limit_refuses_the_archive(photo: bytes) -> None:
    entries = [photos.RawEntry(f"{i}.jpg", photo, method=photos.STORED) for i in range(10)]
    with pytest.raises(z.ZipBomb) as caught:
        _open(photos.build_zip(entries), z.ZipLimits(max_total_size=5 * len(photo)))
    assert caught.value.reason == "total_size"


def test_overlapping_entry_bomb_is_refused_by_the_total() -> None:
    """Fifield's non-recursive bomb: many central records share one kernel of compressed
    data, so the archive is tiny and the declared total is enormous."""
    kernel = b"\x00" * 1_000_000
    entry = photos.RawEntry("k.jpg", kernel)
    one = photos.build_zip([entry])
    local_len = one.find(b"PK\x01\x02")
    record = one[local_len : one.find(b"PK\x05\x06")]
    n = 2000
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n, n, len(record) * n, local_len, 0)
    data = one[:local_len] + record * n + eocd
    with pytest.raises(z.ZipBomb) as caught:
        _open(data, z.ZipLimits(max_total_size=1_000_000_000))
    assert caught.value.reason in ("total_size", "compression_ratio")


def test_overall_ratio_over_limit_refuses_the_archive() -> None:
    # Each entry stays under the per-entry ratio floor; together they declare 500x the archive.
    entries = [photos.RawEntry(f"{i}.png", b"\x00" * 500_000) for i in range(40)]
    data = photos.build_zip(entries)
    with pytest.raises(z.ZipBomb) as caught:
        _open(data)
    assert caught.value.reason == "compression_ratio"


def test_header_lying_about_size_stops_inflating_at_the_declared_size() -> None:
    data = photos.lying_size_zip(real_size=8 * 1024 * 1024, declared=1000)
    reader = z.BytesRangeReader(data)
    entry = next(iter(z.iter_entries(reader, z.open_zip(reader))))
    assert entry.verdict is z.Verdict.IMAGE  # nothing to see in the directory
    with pytest.raises(z.BadEntry) as caught:
        z.read_entry(reader, entry)
    assert caught.value.reason == "size_mismatch"


def test_read_entry_hard_cap(photo: bytes) -> None:
    data = photos.zip_of([("a.jpg", photo)])
    reader = z.BytesRangeReader(data)
    entry = next(iter(z.iter_entries(reader, z.open_zip(reader))))
    with pytest.raises(z.BadEntry) as caught:
        z.read_entry(reader, entry, max_size=len(photo) - 1)
    assert caught.value.reason == "entry_too_large"


# --- bad entries ----------------------------------------------------------------------------


def test_encrypted_flag_fails_the_entry(photo: bytes) -> None:
    data = photos.build_zip(
        [photos.RawEntry("locked.jpg", photo, flags=z.FLAG_ENCRYPTED), photos.RawEntry("open.jpg", photo)]
    )
    reader = z.BytesRangeReader(data)
    locked, unlocked = z.iter_entries(reader, z.open_zip(reader))
    assert (locked.verdict, locked.reason) == (z.Verdict.FAIL, "encrypted")
    assert locked.is_encrypted
    with pytest.raises(z.BadEntry) as caught:
        z.read_entry(reader, locked)
    assert caught.value.reason == "encrypted"
    assert z.read_entry(reader, unlocked) == photo


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # stream-zip's PBKDF2 defaults, not ours
def test_aes_encrypted_entries_fail(photo: bytes) -> None:
    data = photos.streamed_zip([("a.jpg", photo), ("b.jpg", photo)], password="secret")
    summary = _open(data)
    assert (summary.images, summary.failed) == (0, 2)
    assert summary.reasons == {"encrypted": 2}


def test_unsupported_method_fails_the_entry(photo: bytes) -> None:
    data = photos.zip_of([("a.jpg", photo)], compression=zipfile.ZIP_BZIP2)
    summary = _open(data)
    assert summary.reasons == {"unsupported_method": 1}


def test_crc_mismatch(photo: bytes) -> None:
    data = photos.build_zip([photos.RawEntry("a.jpg", photo, crc=12345)])
    reader = z.BytesRangeReader(data)
    entry = next(iter(z.iter_entries(reader, z.open_zip(reader))))
    with pytest.raises(z.BadEntry) as caught:
        z.read_entry(reader, entry)
    assert caught.value.reason == "crc_mismatch"


def test_corrupt_deflate_stream(photo: bytes) -> None:
    data = bytearray(photos.build_zip([photos.RawEntry("a.jpg", photo)]))
    data[200:400] = bytes(200)  # inside the compressed data
    reader = z.BytesRangeReader(bytes(data))
    entry = next(iter(z.iter_entries(reader, z.open_zip(reader))))
    with pytest.raises(z.BadEntry) as caught:
        z.read_entry(reader, entry)
    assert caught.value.reason in ("corrupt_entry", "size_mismatch", "crc_mismatch")


def test_offset_into_the_directory_fails_the_entry(photo: bytes) -> None:
    data = bytearray(photos.zip_of([("a.jpg", photo)]))
    cd = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, cd + 42, cd - 10)  # local header offset just before the directory
    summary = _open(bytes(data))
    assert summary.reasons == {"corrupt_entry": 1}


def test_junk_is_skipped_with_reasons_and_counted(photo: bytes) -> None:
    data = photos.junk_and_photos_zip(photo)
    reader = z.BytesRangeReader(data)
    entries = list(z.iter_entries(reader, z.open_zip(reader)))
    assert [(e.verdict.value, e.reason) for e in entries] == photos.JUNK_EXPECTED
    summary = z.scan(reader)
    assert summary.entries == summary.images + summary.skipped + summary.failed == len(entries)
    for entry in entries:
        if entry.verdict is z.Verdict.IMAGE:
            assert z.read_entry(reader, entry) == photo


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Photos/", "directory"),
        ("Photos\\", "directory"),
        ("__MACOSX/Photos/._a.jpg", "macos_metadata"),
        ("Photos/.DS_Store", "ds_store"),
        ("._a.jpg", "resource_fork"),
        (".thumbs/a.jpg", "hidden_file"),
        ("a.pdf", "not_an_image"),
        ("README", "not_an_image"),
        ("Thumbs.db", "not_an_image"),
    ],
)
def test_classify_skips(name: str, reason: str) -> None:
    verdict, got, detail = z.classify(name)
    assert (verdict, got) == (z.Verdict.SKIP, reason)
    assert detail


@pytest.mark.parametrize(
    "name", ["a.JPG", "x/y.jpeg", "p.png", "p.webp", "IMG_1.HEIC", "s.heif", "../up.jpg", "/abs.jpg"]
)
def test_classify_images(name: str) -> None:
    assert z.classify(name, compressed_size=10, uncompressed_size=10) == (z.Verdict.IMAGE, None, None)
