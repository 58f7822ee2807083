"""Emoji and CJK text render as real glyphs, not as tofu boxes.

Each character is drawn alone in a fixed cell; a known-missing glyph (U+0378, unassigned)
shows what tofu looks like here. Real glyphs differ from it, and from each other.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops

from posterflow.render.engine import RenderEngine, RenderRequest
from posterflow.render.sizes import resolve_size

pytestmark = pytest.mark.browser

CELL = 120
MISSING = "\u0378"


def _cells(engine: RenderEngine, chars: list[str]) -> list[Image.Image]:
    spans = "".join(
        f"<span style='position:absolute;left:{i * CELL}px;top:0;width:{CELL}px;height:{CELL}px;"
        f"font-size:80px;line-height:{CELL}px;text-align:center'>{c}</span>"
        for i, c in enumerate(chars)
    )
    html = f"<html><body style='margin:0;background:#fff;color:#000'>{spans}</body></html>"
    size = resolve_size(width=CELL * len(chars), height=CELL)
    image = Image.open(io.BytesIO(engine.render(RenderRequest(html=html, size=size)).data)).convert("RGB")
    return [image.crop((i * CELL, 0, (i + 1) * CELL, CELL)) for i in range(len(chars))]


def _different(a: Image.Image, b: Image.Image) -> bool:
    diff = ImageChops.difference(a, b).convert("L")
    return sum(1 for v in diff.get_flattened_data() if v > 64) > 50


def _inked(cell: Image.Image) -> bool:
    return ImageChops.difference(cell, Image.new("RGB", cell.size, "white")).getbbox() is not None


def test_cjk_glyphs_are_not_tofu(engine: RenderEngine) -> None:
    chars = ["你", "好", "日", "本", "한", MISSING, MISSING]
    cells = _cells(engine, chars)
    missing_a, missing_b = cells[-2:]
    assert not _different(missing_a, missing_b), "the reference missing glyph should render the same twice"
    for char, cell in zip(chars[:-2], cells[:-2], strict=True):
        assert _inked(cell), f"{char} rendered nothing"
        assert _different(cell, missing_a), f"{char} rendered as the missing-glyph box"
    assert _different(cells[0], cells[1])


def test_emoji_render_in_colour(engine: RenderEngine) -> None:
    chars = ["😀", "🎉", "🚀", MISSING]
    cells = _cells(engine, chars)
    for char, cell in zip(chars[:-1], cells[:-1], strict=True):
        assert _different(cell, cells[-1]), f"{char} rendered as the missing-glyph box"
        coloured = sum(1 for r, g, b in cell.get_flattened_data() if max(r, g, b) - min(r, g, b) > 80)
        assert coloured > 200, f"{char} has no colour: not the colour emoji font"
