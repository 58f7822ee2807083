"""Logo and profile-photo overlays on a rendered poster (seed 000 §1 and §4).

The logo goes top-right and the profile photo bottom-left as a circle with a white border,
both 20 px from the edges. Sources arrive as bytes (the caller fetches S3 keys or allow-listed
URLs; :func:`decode_data_uri` handles ``data:`` URIs). Every failure raises
:class:`OverlayError` with the reason: the seed's overlay failed silently for every poster.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes, urljoin

from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:
    from posterflow.render.netpolicy import NetPolicy

PADDING = 20
MAX_SOURCE_BYTES = 20 * 1024 * 1024
MAX_SOURCE_PIXELS = 40_000_000
"""Decoded size limit of a logo or photo: a 40 MP RGBA bitmap is already 160 MB."""
LOGO_MAX_FRACTION = (0.22, 0.15)
"""Largest logo as a fraction of the poster's width and height (aspect ratio kept)."""
PROFILE_FRACTION = 0.22
"""Profile photo diameter as a fraction of the poster's shorter side."""
_SUPERSAMPLE = 4

_DATA_URI = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^;,]*)*?)(?P<b64>;base64)?,(?P<data>.*)$", re.S
)


class OverlayError(ValueError):
    """An overlay could not be applied; ``reason`` says why (fails the item)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def decode_data_uri(uri: str) -> bytes:
    """The bytes of a ``data:[<mime>][;base64],<data>`` URI."""
    match = _DATA_URI.match(uri.strip())
    if not match:
        raise OverlayError("not a data: URI")
    payload = match.group("data")
    if match.group("b64"):
        try:
            data = base64.b64decode(re.sub(r"\s+", "", unquote_to_bytes(payload).decode("ascii")), validate=True)
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise OverlayError(f"invalid base64 in data: URI: {exc}") from exc
    else:
        data = unquote_to_bytes(payload)
    if len(data) > MAX_SOURCE_BYTES:
        raise OverlayError(f"data: URI holds {len(data)} bytes; the limit is {MAX_SOURCE_BYTES}")
    return data


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # surfaced as an HTTPError; fetch_url follows redirects itself, re-checking each hop


_OPENER = urllib.request.build_opener(_NoRedirects)
MAX_REDIRECTS = 5


def fetch_url(url: str, policy: NetPolicy, *, what: str = "image", timeout_s: float = 10.0) -> bytes:
    """GET an overlay source from an allow-listed URL; every redirect hop is checked again.

    Raises :class:`OverlayError` for a blocked URL, an HTTP error (``logo URL answered 404``),
    a network failure or a body over :data:`MAX_SOURCE_BYTES`."""
    for _ in range(MAX_REDIRECTS + 1):
        decision = policy.check_blocking(url)
        if not decision.allowed:
            raise OverlayError(f"{what} URL {url} is not allowed: {decision.reason}")
        try:
            with _OPENER.open(
                urllib.request.Request(url, headers={"User-Agent": "posterflow"}), timeout=timeout_s
            ) as rsp:
                data = rsp.read(MAX_SOURCE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            location = exc.headers.get("Location") if exc.code in (301, 302, 303, 307, 308) else None
            if location:
                url = urljoin(url, location)
                continue
            raise OverlayError(f"{what} URL {url} answered {exc.code}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise OverlayError(f"{what} URL {url} could not be fetched: {exc}") from exc
        if len(data) > MAX_SOURCE_BYTES:
            raise OverlayError(f"{what} at {url} is larger than {MAX_SOURCE_BYTES} bytes")
        return data
    raise OverlayError(f"{what} URL {url}: more than {MAX_REDIRECTS} redirects")


def fetch_source(
    source: str,
    *,
    policy: NetPolicy,
    read_s3: Callable[[str], bytes] | None = None,
    what: str = "image",
) -> bytes:
    """The bytes of an overlay source: a ``data:`` URI, an allow-listed ``http(s)`` URL, or
    otherwise an S3 key of the project bucket, read with ``read_s3`` (the caller's client)."""
    source = source.strip()
    if not source:
        raise OverlayError(f"{what} source is empty")
    if source.startswith("data:"):
        return decode_data_uri(source)
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source):
        return fetch_url(source, policy, what=what)
    if read_s3 is None:
        raise OverlayError(f"{what} {source!r} looks like an S3 key but no S3 reader was given")
    try:
        return read_s3(source)
    except Exception as exc:  # boto3 raises many types; all mean "this source failed"
        raise OverlayError(f"{what} s3 key {source!r} could not be read: {exc}") from exc


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
        # Level 1: ~3x faster than the default 6 for a few percent more bytes (MEASURED.md).
        out = result if base.mode in ("RGBA", "LA", "P") else result.convert("RGB")
        out.save(buf, "PNG", compress_level=1)
    else:
        raise OverlayError("cannot overlay onto this poster: not PNG, JPEG or WebP")
    return buf.getvalue()
