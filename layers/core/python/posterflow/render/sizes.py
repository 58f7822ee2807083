"""Output sizes and formats of a poster: named presets, explicit width/height, device scale."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

from posterflow.render.errors import UnsupportedFormat as UnsupportedFormat
from posterflow.render.errors import UnsupportedSize as UnsupportedSize

OutputFormat = Literal["png", "jpeg", "webp", "pdf"]
FORMATS: tuple[str, ...] = get_args(OutputFormat)
CONTENT_TYPES: dict[str, str] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "pdf": "application/pdf",
}
EXTENSIONS: dict[str, str] = {"png": "png", "jpeg": "jpg", "webp": "webp", "pdf": "pdf"}

MAX_SIDE = 5000
"""Largest CSS width/height; with ``MAX_SCALE`` bounds the bitmap Chromium must allocate."""
MAX_SCALE = 4.0
MAX_DEVICE_PIXELS = 40_000_000

# CSS pixels at 96 dpi; ``pdf_format`` is what page.pdf() gets so the paper size is exact.
PRESETS: dict[str, tuple[int, int, str | None]] = {
    "instagram-square": (1080, 1080, None),
    "instagram-portrait": (1080, 1350, None),
    "story": (1080, 1920, None),
    "linkedin": (1200, 627, None),
    "twitter": (1600, 900, None),
    "a4": (794, 1123, "A4"),
    "letter": (816, 1056, "Letter"),
    # Print presets (direct mail, seed 002): the CSS size is the paper at 96 dpi; a pdf is the
    # exact paper of PAPER_MM (plus any bleed). "WxH" names are width x height in inches.
    "a4-landscape": (1123, 794, None),
    "letter-landscape": (1056, 816, None),
    "postcard-6x4": (576, 384, None),
    "postcard-4x6": (384, 576, None),
    "postcard-9x6": (864, 576, None),
    "postcard-6x9": (576, 864, None),
}
DEFAULT_PRESET = "instagram-square"

MM_PER_INCH = 25.4
CSS_PX_PER_INCH = 96
PAPER_MM: dict[str, tuple[float, float]] = {
    "a4": (210.0, 297.0),
    "a4-landscape": (297.0, 210.0),
    "letter": (215.9, 279.4),
    "letter-landscape": (279.4, 215.9),
    "postcard-6x4": (152.4, 101.6),
    "postcard-4x6": (101.6, 152.4),
    "postcard-9x6": (228.6, 152.4),
    "postcard-6x9": (152.4, 228.6),
}
"""Paper of the print presets in millimetres (width, height): what a pdf of that preset measures."""
MAX_BLEED_MM = 20.0


def px_to_mm(px: float) -> float:
    """CSS pixels (96 per inch) to millimetres."""
    return px * MM_PER_INCH / CSS_PX_PER_INCH


def mm_to_px(mm: float) -> float:
    return mm * CSS_PX_PER_INCH / MM_PER_INCH


def inches(mm: float) -> str:
    """A length for ``page.pdf``: Chromium rounds a page's sides *up* to whole points (6.2362in
    becomes 450 pt, not 449.0), so ask for the nearest whole point, a hair under it."""
    points = round(mm / MM_PER_INCH * 72)
    return f"{(points - 0.001) / 72:.6f}in"


class PageSize(BaseModel):
    model_config = ConfigDict(frozen=True)

    width: int
    height: int
    scale: float = 1.0
    pdf_format: str | None = None
    preset: str | None = None

    @property
    def pixel_width(self) -> int:
        return round(self.width * self.scale)

    @property
    def pixel_height(self) -> int:
        return round(self.height * self.scale)

    @property
    def paper_mm(self) -> tuple[float, float]:
        """The paper of a pdf in millimetres: a print preset's exact size, else the CSS size at 96 dpi."""
        if self.preset in PAPER_MM:
            return PAPER_MM[self.preset]
        return px_to_mm(self.width), px_to_mm(self.height)


def parse_format(value: str) -> OutputFormat:
    """``'PNG'``, ``'jpg'``, ``'jpeg'`` ... -> the canonical format name."""
    key = value.strip().lower()
    key = "jpeg" if key == "jpg" else key
    for fmt in get_args(OutputFormat):
        if fmt == key:
            return fmt
    raise UnsupportedFormat(f"unsupported format {value!r}; use one of {', '.join(FORMATS)}")


def resolve_size(
    size: str | None = None,
    *,
    width: int | None = None,
    height: int | None = None,
    scale: float | None = None,
) -> PageSize:
    """A preset name, or explicit ``width`` and ``height`` (which win over the preset), plus ``scale``."""
    factor = 1.0 if scale is None else float(scale)
    if not 0.1 <= factor <= MAX_SCALE:
        raise UnsupportedSize(f"scale must be between 0.1 and {MAX_SCALE}, got {scale}")
    pdf_format: str | None = None
    preset: str | None = None
    if width is None and height is None:
        preset = (size or DEFAULT_PRESET).strip().lower()
        if preset not in PRESETS:
            raise UnsupportedSize(f"unknown size {size!r}; use one of {', '.join(PRESETS)} or width and height")
        width, height, pdf_format = PRESETS[preset]
    elif width is None or height is None:
        raise UnsupportedSize("give both width and height")
    for side, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIDE:
            raise UnsupportedSize(f"{side} must be an integer between 1 and {MAX_SIDE}, got {value!r}")
    result = PageSize(width=width, height=height, scale=factor, pdf_format=pdf_format, preset=preset)
    if result.pixel_width * result.pixel_height > MAX_DEVICE_PIXELS:
        raise UnsupportedSize(f"{result.pixel_width}x{result.pixel_height} exceeds {MAX_DEVICE_PIXELS} pixels")
    return result
