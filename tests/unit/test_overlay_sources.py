"""Overlay images: EXIF orientation and the pixel-bomb guard."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from posterflow.posters.overlay import OverlayError, load_image


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def test_exif_orientation_is_applied() -> None:
    # Stored 40x20 with orientation 6 ("rotate 90 CW to display") → displayed 20x40.
    image = Image.new("RGB", (40, 20), "blue")
    image.paste((255, 0, 0), (0, 0, 10, 20))  # red stripe on the stored left edge
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    image.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    loaded = load_image(buf.getvalue(), what="photo")
    assert loaded.size == (20, 40)
    # After a 90° clockwise turn the stored left edge is on top.
    top = loaded.convert("RGB").getpixel((10, 2))
    assert isinstance(top, tuple)
    assert top[0] > 200
    assert top[2] < 80


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims huge dimensions: the classic pixel bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_pixel_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(OverlayError, match="pixel bomb"):
        load_image(_png_header_only(50_000, 50_000), what="logo")
    with pytest.raises(OverlayError, match="limit is 100"):
        load_image(_png(Image.new("RGB", (20, 20))), what="logo", max_pixels=100)


def test_truncated_image_raises() -> None:
    data = _png(Image.effect_noise((64, 64), 50))
    with pytest.raises(OverlayError, match="could not be decoded"):
        load_image(data[: len(data) // 2], what="photo")
