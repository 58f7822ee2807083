"""Print presets: the paper in millimetres, the CSS size at 96 dpi, landscape variants, and the
length page.pdf is given."""

from __future__ import annotations

import pytest

from posterflow.render.sizes import PAPER_MM, PRESETS, inches, mm_to_px, resolve_size


@pytest.mark.parametrize("name", sorted(PAPER_MM))
def test_every_print_preset_is_a_size_at_96_dpi(name: str) -> None:
    width_mm, height_mm = PAPER_MM[name]
    width, height, _ = PRESETS[name]
    assert (width, height) == (round(mm_to_px(width_mm)), round(mm_to_px(height_mm)))
    size = resolve_size(name)
    assert size.paper_mm == (width_mm, height_mm) and size.preset == name


@pytest.mark.parametrize(
    ("portrait", "landscape"),
    [("postcard-4x6", "postcard-6x4"), ("postcard-6x9", "postcard-9x6"), ("a4", "a4-landscape"),
     ("letter", "letter-landscape")],
)
def test_landscape_variants_swap_the_sides(portrait: str, landscape: str) -> None:
    assert PAPER_MM[landscape] == PAPER_MM[portrait][::-1]
    width, height = PAPER_MM[landscape]
    assert width > height


def test_postcards_are_whole_inches() -> None:
    assert PAPER_MM["postcard-6x4"] == pytest.approx((6 * 25.4, 4 * 25.4))
    assert PAPER_MM["postcard-9x6"] == pytest.approx((9 * 25.4, 6 * 25.4))


@pytest.mark.parametrize(("mm", "points"), [(152.4, 432), (158.4, 449), (210.0, 595), (297.0, 842)])
def test_pdf_lengths_ask_for_the_nearest_whole_point(mm: float, points: int) -> None:
    # Chromium rounds a page's side up to whole points: a hair under the nearest one lands on it.
    value = float(inches(mm).removesuffix("in")) * 72
    assert points - 0.01 < value < points


def test_a_screen_preset_prints_at_its_css_size() -> None:
    assert resolve_size("story").paper_mm == pytest.approx((1080 * 25.4 / 96, 1920 * 25.4 / 96))
