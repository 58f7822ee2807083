"""apply_overlays: logo top-right, circular bordered photo bottom-left, 20 px padding."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from posterflow.posters.overlay import PADDING, OverlayError, apply_overlays

NAVY = (0, 0, 128)
RED = (255, 0, 0)
GREEN = (0, 160, 0)


def _encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def _decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def _close(a: tuple[int, ...], b: tuple[int, ...], tol: int = 12) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=False))


@pytest.fixture
def poster() -> bytes:
    return _encode(Image.new("RGB", (1080, 1080), NAVY))


def test_logo_sits_top_right_with_padding(poster: bytes) -> None:
    out = _decode(apply_overlays(poster, logo=_encode(Image.new("RGB", (300, 100), RED)))).convert("RGB")
    # Logo keeps its 3:1 aspect, right edge and top edge 20 px in.
    assert _close(out.getpixel((1080 - PADDING - 1, PADDING)), RED)
    assert _close(out.getpixel((1080 - PADDING, PADDING)), NAVY)
    assert _close(out.getpixel((1080 - PADDING - 1, PADDING - 1)), NAVY)
    red_cols = [x for x in range(1080) if _close(out.getpixel((x, PADDING + 5)), RED)]
    red_rows = [y for y in range(1080) if _close(out.getpixel((1080 - PADDING - 5, y)), RED)]
    width, height = max(red_cols) - min(red_cols) + 1, max(red_rows) - min(red_rows) + 1
    assert abs(width / height - 3) < 0.1
    # The rest of the poster is untouched.
    assert _close(out.getpixel((540, 540)), NAVY)


def test_profile_is_a_white_ringed_circle_bottom_left(poster: bytes) -> None:
    out = _decode(apply_overlays(poster, profile=_encode(Image.new("RGB", (640, 480), GREEN), "JPEG"))).convert("RGB")
    # Find the circle's extent along the bottom-left diagonal region.
    row = 1080 - PADDING - 1
    column_hits = [x for x in range(0, 600) if not _close(out.getpixel((x, 1080 - PADDING - 120)), NAVY)]
    left, right = min(column_hits), max(column_hits)
    assert left == PADDING
    diameter = right - left + 1
    center = (PADDING + diameter // 2, 1080 - PADDING - diameter // 2)
    assert _close(out.getpixel(center), GREEN, tol=20)
    # White ring at the circle's edge, poster colour at the bounding square's corner (circular crop).
    assert _close(out.getpixel((center[0], 1080 - PADDING - 2)), (255, 255, 255), tol=30)
    assert _close(out.getpixel((PADDING + 1, row)), NAVY)
    assert _close(out.getpixel((PADDING, 1080 - PADDING)), NAVY)


def test_format_and_size_are_kept() -> None:
    for fmt in ("PNG", "JPEG", "WEBP"):
        base = _encode(Image.new("RGB", (800, 600), NAVY), fmt)
        out = _decode(apply_overlays(base, logo=_encode(Image.new("RGBA", (50, 50), RED))))
        assert out.format == fmt
        assert out.size == (800, 600)


def test_no_sources_returns_the_poster_unchanged(poster: bytes) -> None:
    assert apply_overlays(poster) is poster


def test_failures_raise_with_the_reason(poster: bytes) -> None:
    with pytest.raises(OverlayError, match="logo is not a recognised image"):
        apply_overlays(poster, logo=b"<html>404 Not Found</html>")
    with pytest.raises(OverlayError, match="profile photo is empty"):
        apply_overlays(poster, profile=b"")
    with pytest.raises(OverlayError, match="PDF"):
        apply_overlays(b"%PDF-1.4 ...", logo=_encode(Image.new("RGB", (5, 5))))
