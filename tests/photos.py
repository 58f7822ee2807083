"""Test photos and ZIPs, built at run time (nothing large is committed).

Faces come from scikit-image's shipped sample images (``astronaut.png``, ``camera.png``),
located through the installed package without importing it. Bad inputs are crafted byte by
byte where a library would refuse to write them (a PNG declaring 30,000 x 30,000 pixels, an
entry flagged encrypted, ZIP64 records on a small archive, a header that lies about sizes).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import struct
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

# --- sample images --------------------------------------------------------------------------


def skimage_data_dir() -> Path:
    spec = importlib.util.find_spec("skimage")
    assert spec is not None and spec.submodule_search_locations, "scikit-image (dev dependency) is not installed"
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@functools.cache
def astronaut() -> Image.Image:
    """512 x 512 RGB; one frontal face, box roughly (178, 63, 90, 113)."""
    with Image.open(skimage_data_dir() / "astronaut.png") as img:
        return img.convert("RGB")


@functools.cache
def camera() -> Image.Image:
    """512 x 512 greyscale cameraman (as RGB); one face, box roughly (196, 113, 61, 81)."""
    with Image.open(skimage_data_dir() / "camera.png") as img:
        return img.convert("RGB")


@functools.cache
def scenery(name: str = "brick.png") -> Image.Image:
    """A face-free photo: ``brick.png`` (512 x 512) or ``coffee.png`` (600 x 400)."""
    with Image.open(skimage_data_dir() / name) as img:
        return img.convert("RGB")


def two_faces() -> Image.Image:
    """The astronaut and the cameraman side by side (1024 x 512)."""
    canvas = Image.new("RGB", (1024, 512))
    canvas.paste(astronaut(), (0, 0))
    canvas.paste(camera(), (512, 0))
    return canvas


def encode(img: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def jpeg(img: Image.Image | None = None, quality: int = 90) -> bytes:
    return encode(img or astronaut(), "JPEG", quality=quality)


def _landscape(width: int, height: int, noise: float, seed: int) -> Image.Image:
    """The astronaut scaled to ``height`` square, widened by mirrored edges (no extra faces:
    the face sits in the middle third) and given mild sensor-like noise so the JPEG is as
    large and as slow to decode as a camera photo, not a smooth upscale."""
    import cv2  # OpenCV resizes and pads a 12 MP image ~10x faster than Pillow + numpy

    side = height
    arr = cv2.resize(np.asarray(astronaut()), (side, side), interpolation=cv2.INTER_CUBIC)
    pad = width - side
    arr = cv2.copyMakeBorder(arr, 0, 0, pad // 2, pad - pad // 2, cv2.BORDER_REFLECT_101)
    if noise:
        # A tiled noise block costs as much entropy per 8x8 JPEG block as fresh noise.
        rng = np.random.default_rng(seed)
        tile = rng.normal(0, noise, (256, 256, 3)).astype(np.int16)
        reps = (-(-arr.shape[0] // 256), -(-arr.shape[1] // 256), 1)
        noisy = arr.astype(np.int16) + np.tile(tile, reps)[: arr.shape[0], : arr.shape[1]]
        arr = np.clip(noisy, 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


@functools.cache
def photo_12mp(quality: int = 90, noise: float = 8.0) -> bytes:
    """A 4000 x 3000 (12 MP) JPEG with one face."""
    return jpeg(_landscape(4000, 3000, noise, seed=12), quality)


@functools.cache
def photo_small(width: int = 1600, height: int = 1200, quality: int = 90) -> bytes:
    """A JPEG of at most 1600 px with one face."""
    return jpeg(_landscape(width, height, 3.0, seed=16), quality)


def portrait_upright() -> Image.Image:
    """768 x 1024 portrait of the astronaut, as it should be displayed."""
    return astronaut().crop((64, 0, 448, 512)).resize((768, 1024), Image.Resampling.BICUBIC)


def portrait_exif_rotated(orientation: int = 6) -> bytes:
    """A JPEG whose pixels are stored rotated (landscape) with an EXIF orientation tag saying
    how to turn them upright: 6 = rotate 90° clockwise to display, 8 = 90° counter-clockwise."""
    turns = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
    stored = portrait_upright().transpose(turns[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=90, exif=exif.tobytes())


def cmyk_jpeg() -> bytes:
    return encode(astronaut().convert("CMYK"), "JPEG", quality=90)


def png_alpha() -> bytes:
    """The astronaut with a fully transparent 64 px border whose hidden colour is black, so a
    decoder that drops alpha instead of flattening onto white shows black corners."""
    rgba = astronaut().convert("RGBA")
    arr = np.array(rgba)
    mask = np.zeros(arr.shape[:2], dtype=bool)
    mask[64:-64, 64:-64] = True
    arr[~mask] = (0, 0, 0, 0)
    return encode(Image.fromarray(arr, "RGBA"), "PNG")


def webp() -> bytes:
    return encode(astronaut(), "WEBP", quality=90)


def heic() -> bytes | None:
    """The astronaut as HEIC, or None where pillow-heif has no HEVC encoder."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return None
    register_heif_opener()
    try:
        return encode(astronaut(), "HEIF", quality=85)
    except (KeyError, OSError, ValueError):
        return None


def face_free_jpeg(name: str = "brick.png") -> bytes:
    return jpeg(scenery(name))


def truncated_jpeg() -> bytes:
    data = jpeg(astronaut())
    return data[: len(data) // 2]


def empty() -> bytes:
    return b""


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def pixel_bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A ~100-byte PNG that declares ``width`` x ``height`` RGB pixels. Its IDAT holds only a
    few rows: a decoder that trusts the header allocates 2.7 GB before noticing."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 3 * min(width, 64)) * 4)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", rows) + _png_chunk(b"IEND", b"")


# --- ZIPs -----------------------------------------------------------------------------------

STORED = 0
DEFLATED = 8


@dataclass
class RawEntry:
    """One entry for :func:`build_zip`. The ``declared_*`` fields and ``crc`` override what is
    written in the headers, to build archives that lie."""

    name: str | bytes
    data: bytes = b""
    method: int = DEFLATED
    flags: int = 0
    external_attr: int = 0
    declared_size: int | None = None
    declared_compressed_size: int | None = None
    crc: int | None = None
    central_extra: bytes = b""  # extra fields appended to the central record (not with zip64)


def _deflate(data: bytes, level: int = 6) -> bytes:
    packer = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def build_zip(
    entries: Iterable[RawEntry],
    *,
    zip64: bool = False,
    prefix: bytes = b"",
    comment: bytes = b"",
    declared_count: int | None = None,
) -> bytes:
    """A ZIP written by hand. ``zip64=True`` writes every size and offset through ZIP64 extra
    fields and ZIP64 end records (as a streaming writer does for huge archives). ``prefix`` is
    prepended without adjusting offsets, like a self-extractor stub."""
    out: list[bytes] = [prefix]
    pos = 0  # offsets are relative to the archive, not to the prefix
    central: list[bytes] = []
    count = 0
    for entry in entries:
        name = entry.name.encode("utf-8") if isinstance(entry.name, str) else entry.name
        flags = entry.flags
        if isinstance(entry.name, str) and not entry.name.isascii():
            flags |= 0x0800
        body = _deflate(entry.data) if entry.method == DEFLATED else entry.data
        crc = zlib.crc32(entry.data) if entry.crc is None else entry.crc
        usize = len(entry.data) if entry.declared_size is None else entry.declared_size
        csize = len(body) if entry.declared_compressed_size is None else entry.declared_compressed_size
        if zip64:
            local_extra = struct.pack("<HHQQ", 1, 16, usize, csize)
            local_sizes = (0xFFFFFFFF, 0xFFFFFFFF)
            central_extra = struct.pack("<HHQQQ", 1, 24, usize, csize, pos)
            central_sizes = (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
        else:
            local_extra = b""
            local_sizes = (csize, usize)
            central_extra = entry.central_extra
            central_sizes = (csize, usize, pos)
        version = 45 if zip64 else 20
        local = struct.pack(
            "<4sHHHHHIIIHH",
            b"PK\x03\x04",
            version,
            flags,
            entry.method,
            0,
            0x21,
            crc,
            local_sizes[0],
            local_sizes[1],
            len(name),
            len(local_extra),
        )
        out += [local, name, local_extra, body]
        central.append(
            struct.pack(
                "<4sHHHHHHIIIHHHHHII",
                b"PK\x01\x02",
                (3 << 8) | version,
                version,
                flags,
                entry.method,
                0,
                0x21,
                crc,
                central_sizes[0],
                central_sizes[1],
                len(name),
                len(central_extra),
                0,
                0,
                0,
                entry.external_attr,
                central_sizes[2],
            )
            + name
            + central_extra
        )
        pos += len(local) + len(name) + len(local_extra) + len(body)
        count += 1
    cd = b"".join(central)
    out.append(cd)
    cd_offset = pos
    pos += len(cd)
    n = count if declared_count is None else declared_count
    if zip64 or n > 0xFFFF:
        out.append(struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, len(cd), cd_offset))
        out.append(struct.pack("<4sIQI", b"PK\x06\x07", 0, pos, 1))
        out.append(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, len(comment)))
    else:
        out.append(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n, n, len(cd), cd_offset, len(comment)))
    out.append(comment)
    return b"".join(out)


def zip_of(files: Sequence[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A normal ZIP written by the standard library."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name, data in files:
            zf.writestr(name, data)
    return out.getvalue()


def streamed_zip(files: Sequence[tuple[str, bytes]], *, zip64: bool = True, password: str | None = None) -> bytes:
    """A ZIP from stream-zip (data descriptors, ZIP64 records; AES when ``password``)."""
    from stream_zip import ZIP_32, ZIP_64, stream_zip

    method = ZIP_64 if zip64 else ZIP_32
    when = datetime(2024, 1, 1)
    members = ((name, when, 0o600, method, (data,)) for name, data in files)
    return b"".join(stream_zip(members, password=password))


def zip64_many(count: int, payload: bytes = b"x") -> bytes:
    """``count`` tiny stored entries with every field in ZIP64 form."""
    return build_zip((RawEntry(f"photos/{i:07d}.jpg", payload, method=STORED) for i in range(count)), zip64=True)


def junk_and_photos_zip(photo: bytes) -> bytes:
    """Every kind of entry a real upload contains besides photos, and names that try to
    escape or collide. Entry order (and so index) is fixed; see ``JUNK_EXPECTED``."""
    return zip_of(
        [
            ("team/", b""),
            ("team/alice.jpg", photo),
            ("__MACOSX/team/._alice.jpg", b"\x00\x05\x16\x07"),
            ("team/.DS_Store", b"\x00\x00\x00\x01Bud1"),
            ("team/._bob.jpg", b"\x00\x05\x16\x07"),
            ("team/.hidden/carol.jpg", photo),
            ("team/notes.txt", b"not a photo"),
            ("../evil.jpg", photo),
            ("/abs/root.jpg", photo),
            ("a/dup.jpg", photo),
            ("b/dup.jpg", photo),
            ("José Ñandú.JPG", photo),
            ("evil\u202egpj.png", photo),
        ]
    )


# (verdict, reason) per entry of junk_and_photos_zip
JUNK_EXPECTED: list[tuple[str, str | None]] = [
    ("skip", "directory"),
    ("image", None),
    ("skip", "macos_metadata"),
    ("skip", "ds_store"),
    ("skip", "resource_fork"),
    ("skip", "hidden_file"),
    ("skip", "not_an_image"),
    ("image", None),
    ("image", None),
    ("image", None),
    ("image", None),
    ("image", None),
    ("image", None),
]


def deflate_bomb_zip(size: int = 20 * 1024 * 1024, name: str = "bomb.jpg") -> bytes:
    """One entry of ``size`` zero bytes: deflate squeezes it about 1000:1."""
    return build_zip([RawEntry(name, b"\x00" * size)])


def lying_size_zip(real_size: int = 4 * 1024 * 1024, declared: int = 1000) -> bytes:
    """An entry that declares ``declared`` bytes but inflates to ``real_size``."""
    return build_zip([RawEntry("liar.jpg", b"\x00" * real_size, declared_size=declared)])


class SyntheticZip:
    """A ZIP64 archive of ``count`` stored entries of ``entry_size`` zero bytes, computed on
    demand for any byte range and never held in memory: a :class:`RangeReader` standing in
    for a multi-gigabyte upload."""

    _LOCAL_EXTRA = 20  # ZIP64 extra in the local header: id, size, uncompressed, compressed
    _CENTRAL_EXTRA = 28  # ZIP64 extra in the central record: + local header offset

    def __init__(self, count: int, entry_size: int) -> None:
        self.count = count
        self.entry_size = entry_size
        self.name_len = len(self._name(0))
        self.local_size = 30 + self.name_len + self._LOCAL_EXTRA + entry_size
        self.central_size = 46 + self.name_len + self._CENTRAL_EXTRA
        self.cd_offset = count * self.local_size
        self.cd_size = count * self.central_size
        self.crc = 0
        chunk = bytes(min(entry_size, 1 << 20))
        left = entry_size
        while left:
            step = min(left, len(chunk))
            self.crc = zlib.crc32(chunk[:step], self.crc)
            left -= step
        end_at = self.cd_offset + self.cd_size
        self._tail = (
            struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, self.cd_size, self.cd_offset)
            + struct.pack("<4sIQI", b"PK\x06\x07", 0, end_at, 1)
            + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
        )
        self.total = end_at + len(self._tail)
        self.requests = 0

    @staticmethod
    def _name(index: int) -> bytes:
        return f"photos/{index:08d}.jpg".encode()

    def _local_header(self, index: int) -> bytes:
        s = self.entry_size
        return (
            struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 45, 0, 0, 0, 0x21, self.crc, 0xFFFFFFFF, 0xFFFFFFFF,
                        self.name_len, self._LOCAL_EXTRA)
            + self._name(index)
            + struct.pack("<HHQQ", 1, 16, s, s)
        )  # fmt: skip

    def _central(self, index: int) -> bytes:
        s = self.entry_size
        return (
            struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 45, 45, 0, 0, 0, 0x21, self.crc, 0xFFFFFFFF,
                        0xFFFFFFFF, self.name_len, self._CENTRAL_EXTRA, 0, 0, 0, 0, 0xFFFFFFFF)
            + self._name(index)
            + struct.pack("<HHQQQ", 1, 24, s, s, index * self.local_size)
        )  # fmt: skip

    def size(self) -> int:
        return self.total

    def read(self, offset: int, length: int) -> bytes:
        self.requests += 1
        end = min(offset + length, self.total)
        parts: list[bytes] = []
        pos = offset
        while pos < end:
            if pos < self.cd_offset:
                index, within = divmod(pos, self.local_size)
                header = self._local_header(index)
                segment = header if within < len(header) else None
                seg_start = index * self.local_size
                if segment is None:  # inside the zero data
                    take = min(end, seg_start + self.local_size) - pos
                    parts.append(bytes(take))
                    pos += take
                    continue
            elif pos < self.cd_offset + self.cd_size:
                index = (pos - self.cd_offset) // self.central_size
                segment = self._central(index)
                seg_start = self.cd_offset + index * self.central_size
            else:
                segment = self._tail
                seg_start = self.cd_offset + self.cd_size
            piece = segment[pos - seg_start : end - seg_start]
            parts.append(piece)
            pos += len(piece)
        return b"".join(parts)
