"""Formats and bad photos: each decodes upright or fails with a reason; the worker goes on."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import photos
import pytest

from posterflow.crop import CropOptions, PhotoError, crop_photo
from posterflow.crop import decode as dec


def _reason(data: bytes, options: CropOptions | None = None) -> str:
    with pytest.raises(PhotoError) as caught:
        crop_photo(data, options)
    assert caught.value.message
    return caught.value.reason


# --- formats --------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [photos.cmyk_jpeg, photos.png_alpha, photos.webp])
def test_formats_find_the_face(make: object) -> None:
    data = make()  # type: ignore[operator]
    [result] = crop_photo(data)
    assert result.face_detected


def test_heic_finds_the_face() -> None:
    data = photos.heic()
    if data is None:
        pytest.skip("pillow-heif has no HEVC encoder here")
    [result] = crop_photo(data)
    assert result.face_detected and result.source_format == "HEIF"


def test_cmyk_colours_survive() -> None:
    rgb = dec.decode(photos.jpeg(quality=95)).bgr.astype(np.int16)
    cmyk = dec.decode(photos.cmyk_jpeg()).bgr.astype(np.int16)
    # An inverted-CMYK mistake would make the mean error ~128; JPEG loss is a few levels.
    assert np.abs(rgb - cmyk).mean() < 8


def test_png_alpha_is_flattened_onto_white() -> None:
    decoded = dec.decode(photos.png_alpha())
    assert decoded.decoder == "pillow"
    assert decoded.bgr[0, 0].tolist() == [255, 255, 255]
    assert decoded.bgr[-1, -1].tolist() == [255, 255, 255]
    assert decoded.bgr[256, 256].tolist() != [255, 255, 255]


def test_twelve_megapixel_jpeg_is_decoded_reduced() -> None:
    decoded = dec.decode(photos.photo_12mp())
    assert (decoded.source_width, decoded.source_height) == (4000, 3000)
    assert decoded.bgr.shape == (750, 1000, 3)
    assert decoded.scale == 0.25 and decoded.decoder == "opencv"
    [result] = crop_photo(photos.photo_12mp())
    # The face box is reported in the 12 MP photo's pixels.
    assert result.box is not None and result.box.w > 400


def test_small_photo_is_decoded_at_full_size() -> None:
    decoded = dec.decode(photos.photo_small())
    assert decoded.bgr.shape == (1200, 1600, 3) and decoded.scale == 1.0


@pytest.mark.parametrize(
    ("long_side", "factor"), [(500, 1), (1999, 1), (2000, 2), (3999, 2), (4000, 4), (8000, 8), (20000, 8)]
)
def test_reduction_keeps_the_long_side_at_least_1000(long_side: int, factor: int) -> None:
    assert dec.reduction_factor(long_side, 1000) == factor


def test_header_is_read_without_decoding() -> None:
    header = dec.read_header(photos.portrait_exif_rotated(6))
    assert (header.format, header.width, header.height, header.orientation) == ("JPEG", 1024, 768, 6)
    assert header.upright_size == (768, 1024)


# --- bad photos -----------------------------------------------------------------------------


def test_truncated_jpeg() -> None:
    assert _reason(photos.truncated_jpeg()) == "truncated"


def test_zero_byte_file() -> None:
    assert _reason(photos.empty()) == "empty"


def test_pixel_bomb_png_is_refused_before_decoding() -> None:
    data = photos.pixel_bomb_png(30_000, 30_000)
    assert len(data) < 1000
    assert _reason(data) == "pixel_bomb"


def test_pixel_limit_is_ours_not_pillows() -> None:
    # 108 MP: under Pillow's own error threshold (179 MP), over our 100 MP limit.
    assert _reason(photos.pixel_bomb_png(12_000, 9_000)) == "pixel_bomb"
    assert _reason(photos.jpeg(), CropOptions(max_pixels=512 * 511)) == "pixel_bomb"


def test_not_an_image() -> None:
    assert _reason(b"%PDF-1.7 this is not a photo" * 10) == "not_an_image"


def test_too_many_bytes() -> None:
    assert _reason(photos.jpeg(), CropOptions(max_bytes=1000)) == "too_large"


def test_corrupt_png_data() -> None:
    png = photos.encode(photos.astronaut(), "PNG")
    ihdr_end = 8 + 25
    garbage = b"\x00" * 1000
    chunk = struct.pack(">I", len(garbage)) + b"IDAT" + garbage + struct.pack(">I", zlib.crc32(b"IDAT" + garbage))
    data = png[:ihdr_end] + chunk + png[-12:]
    assert _reason(data) in ("corrupt", "truncated")


def test_jpeg_completeness_check() -> None:
    good = photos.jpeg()
    assert dec.jpeg_is_complete(good)
    assert dec.jpeg_is_complete(good + b"\x00\x00\x00\x18ftypmp42 trailing video")  # motion photo
    assert not dec.jpeg_is_complete(good[:-2])
    assert not dec.jpeg_is_complete(good[:600])
    assert not dec.jpeg_is_complete(b"\xff\xd8\xff\xd9")


def test_worker_survives_bad_photos() -> None:
    for bad in (photos.truncated_jpeg(), photos.empty(), photos.pixel_bomb_png(), b"junk"):
        with pytest.raises(PhotoError):
            crop_photo(bad)
    [result] = crop_photo(photos.jpeg())
    assert result.face_detected


def test_source_size_follows_the_pixels_when_exif_readers_disagree() -> None:
    portrait = np.zeros((100, 75, 3), dtype=np.uint8)
    turned = dec._result(portrait, 1000, 750, "JPEG", "opencv")  # header said landscape
    assert (turned.source_width, turned.source_height, turned.scale) == (750, 1000, 0.1)
    square = np.zeros((125, 125, 3), dtype=np.uint8)
    kept = dec._result(square, 1001, 1000, "JPEG", "opencv")  # rounding, not a turn
    assert (kept.source_width, kept.source_height) == (1001, 1000)
