"""Every output format renders with the right magic bytes and dimensions."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from posterflow.render.engine import RenderEngine, RenderRequest
from posterflow.render.sizes import (
    PRESETS,
    UnsupportedFormat,
    UnsupportedSize,
    parse_format,
    resolve_size,
)

pytestmark = pytest.mark.browser

POSTER = "<html><body style='margin:0;background:#0a5'><h1 style='color:white'>Hello {n}</h1></body></html>"


@pytest.mark.parametrize(
    ("fmt", "magic", "pil_format"),
    [("png", b"\x89PNG\r\n\x1a\n", "PNG"), ("jpeg", b"\xff\xd8\xff", "JPEG"), ("webp", b"RIFF", "WEBP")],
)
@pytest.mark.parametrize("preset", ["instagram-square", "instagram-portrait", "story", "linkedin", "twitter"])
def test_image_formats_and_presets(engine: RenderEngine, fmt: str, magic: bytes, pil_format: str, preset: str) -> None:
    size = resolve_size(preset)
    result = engine.render(RenderRequest(html=POSTER.format(n=preset), format=fmt, size=size))  # type: ignore[arg-type]
    assert result.data.startswith(magic)
    image = Image.open(io.BytesIO(result.data))
    assert image.format == pil_format
    assert image.size == PRESETS[preset][:2] == (result.width, result.height)
    # The page background really was painted (not a blank white capture).
    r, g, _ = image.convert("RGB").getpixel((size.width - 2, size.height - 2))  # type: ignore[misc]
    assert g > 120 and r < 40


def test_scale_multiplies_pixels(engine: RenderEngine) -> None:
    result = engine.render(RenderRequest(html=POSTER.format(n=2), size=resolve_size(width=300, height=200, scale=2)))
    assert Image.open(io.BytesIO(result.data)).size == (600, 400)
    result = engine.render(RenderRequest(html=POSTER.format(n=1), size=resolve_size(width=300, height=200)))
    assert Image.open(io.BytesIO(result.data)).size == (300, 200)


def _pdf_page_box(data: bytes) -> tuple[float, float]:
    match = re.search(rb"/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*\]", data)
    assert match, "no MediaBox in PDF"
    x0, y0, x1, y1 = (float(v) for v in match.groups())
    return x1 - x0, y1 - y0


@pytest.mark.parametrize(("preset", "points"), [("a4", (595.92, 842.88)), ("letter", (612.0, 792.0))])
def test_pdf_paper_sizes(engine: RenderEngine, preset: str, points: tuple[float, float]) -> None:
    result = engine.render(RenderRequest(html=POSTER.format(n=preset), format="pdf", size=resolve_size(preset)))
    assert result.data.startswith(b"%PDF-")
    assert result.content_type == "application/pdf"
    width, height = _pdf_page_box(result.data)
    assert width == pytest.approx(points[0], abs=2)
    assert height == pytest.approx(points[1], abs=2)


def test_pdf_custom_size(engine: RenderEngine) -> None:
    size = resolve_size(width=960, height=540)
    result = engine.render(RenderRequest(html=POSTER.format(n=0), format="pdf", size=size))
    width, height = _pdf_page_box(result.data)
    # 96 CSS px per inch, 72 points per inch.
    assert width == pytest.approx(720, abs=2)
    assert height == pytest.approx(405, abs=2)


def test_bad_sizes_and_formats_are_refused() -> None:
    assert parse_format("JPG") == "jpeg"
    with pytest.raises(UnsupportedFormat):
        parse_format("gif")
    with pytest.raises(UnsupportedSize):
        resolve_size("billboard")
    with pytest.raises(UnsupportedSize):
        resolve_size(width=100)
    with pytest.raises(UnsupportedSize):
        resolve_size(width=0, height=100)
    with pytest.raises(UnsupportedSize):
        resolve_size(width=5000, height=5000, scale=4)
    with pytest.raises(UnsupportedSize):
        resolve_size("story", scale=0)
