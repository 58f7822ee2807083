"""Logo and profile-photo overlays on a rendered poster (seed 000 §1 and §4).

The logo goes top-right and the profile photo bottom-left as a circle with a white border,
both 20 px from the edges. Sources arrive as bytes (:mod:`posterflow.net.sources` resolves and
reads them). Every failure raises :class:`OverlayError` with the reason: the seed's overlay
failed silently for every poster.
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from posterflow.posters.errors import OverlayError as OverlayError

if TYPE_CHECKING:
    pass

PADDING = 20
MAX_SOURCE_BYTES = 20 * 1024 * 1024  # the same limit as net.fetch's
MAX_SOURCE_PIXELS = 40_000_000
"""Decoded size limit of a logo or photo: a 40 MP RGBA bitmap is already 160 MB."""
LOGO_MAX_FRACTION = (0.22, 0.15)
"""Largest logo as a fraction of the poster's width and height (aspect ratio kept)."""
PROFILE_FRACTION = 0.22
"""Profile photo diameter as a fraction of the poster's shorter side."""
_SUPERSAMPLE = 4


def load_image(data: bytes, *, what: str = "image", max_pixels: int = MAX_SOURCE_PIXELS) -> Image.Image:
    """Decode with EXIF orientation applied; refuses pixel bombs before decoding the pixels."""
    if not data:
        raise OverlayError(f"{what} is empty")
    if len(data) > MAX_SOURCE_BYTES:
        raise OverlayError(f"{what} is {len(data)} bytes; the limit is {MAX_SOURCE_BYTES}")
    try:
        with warnings.catch_warnings():
            # Pillow warns (rather than raises) between MAX_IMAGE_PIXELS and twice that; our own
            # limit below is the one that counts, so make its warning an error too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise OverlayError(f"{what} is {width}x{height} pixels; the limit is {max_pixels} (pixel bomb?)")
            image.load()
            image = ImageOps.exif_transpose(image)
    except OverlayError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise OverlayError(f"{what} is too large to decode (pixel bomb?): {exc}") from exc
    except UnidentifiedImageError as exc:
        raise OverlayError(f"{what} is not a recognised image") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise OverlayError(f"{what} could not be decoded: {exc}") from exc
    return image


def _fit(image: Image.Image, max_w: int, max_h: int) -> Image.Image:
    image = image.convert("RGBA")
    ratio = min(max_w / image.width, max_h / image.height)
    size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
    return image.resize(size, Image.Resampling.LANCZOS)


def circular_photo(image: Image.Image, diameter: int, border: int) -> Image.Image:
    """A square-cropped photo in a circle with a white ring, anti-aliased by supersampling."""
    big = diameter * _SUPERSAMPLE
    photo = ImageOps.fit(image.convert("RGB"), (big, big), Image.Resampling.LANCZOS)
    ring = border * _SUPERSAMPLE
    out = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    ImageDraw.Draw(out).ellipse((0, 0, big - 1, big - 1), fill=(255, 255, 255, 255))
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).ellipse((ring, ring, big - 1 - ring, big - 1 - ring), fill=255)
    out.paste(photo, (0, 0), mask)
    return out.resize((diameter, diameter), Image.Resampling.LANCZOS)


def compose(base: Image.Image, *, logo: Image.Image | None = None, profile: Image.Image | None = None) -> Image.Image:
    """The poster with the logo top-right and the circular profile photo bottom-left."""
    canvas = base.convert("RGBA")
    width, height = canvas.size
    if logo is not None:
        max_w = max(1, min(round(width * LOGO_MAX_FRACTION[0]), width - 2 * PADDING))
        max_h = max(1, min(round(height * LOGO_MAX_FRACTION[1]), height - 2 * PADDING))
        mark = _fit(logo, max_w, max_h)
        canvas.alpha_composite(mark, (width - PADDING - mark.width, PADDING))
    if profile is not None:
        diameter = max(8, min(round(min(width, height) * PROFILE_FRACTION), min(width, height) - 2 * PADDING))
        border = max(2, diameter // 40)
        circle = circular_photo(profile, diameter, border)
        canvas.alpha_composite(circle, (PADDING, height - PADDING - diameter))
    return canvas


def _sniff_format(data: bytes) -> str:
    # Image.format does not survive exif_transpose, so read the magic bytes instead.
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return "UNKNOWN"


def apply_overlays(
    poster: bytes,
    *,
    logo: bytes | None = None,
    profile: bytes | None = None,
    quality: int = 85,
) -> bytes:
    """Overlay onto an encoded PNG/JPEG/WebP poster and re-encode it in the same format.

    Raises :class:`OverlayError` (with the reason) for an undecodable or oversized source or
    poster, or a PDF poster. With neither ``logo`` nor ``profile`` the poster comes back as is.
    """
    if logo is None and profile is None:
        return poster
    if poster[:5] == b"%PDF-":
        raise OverlayError("overlays are not supported on PDF output")
    fmt = _sniff_format(poster)
    base = load_image(poster, what="poster")
    logo_image = load_image(logo, what="logo") if logo is not None else None
    profile_image = load_image(profile, what="profile photo") if profile is not None else None
    result = compose(base, logo=logo_image, profile=profile_image)
    buf = io.BytesIO()
    if fmt == "JPEG":
        result.convert("RGB").save(buf, "JPEG", quality=quality, optimize=False)
    elif fmt == "WEBP":
        result.save(buf, "WEBP", quality=quality, method=2)
    elif fmt == "PNG":
        # Level 1: ~3x faster than the default 6 for a few percent more bytes (bench/render.py; README, Benchmarks).
        out = result if base.mode in ("RGBA", "LA", "P") else result.convert("RGB")
        out.save(buf, "PNG", compress_level=1)
    else:
        raise OverlayError("cannot overlay onto this poster: not PNG, JPEG or WebP")
    return buf.getvalue()
