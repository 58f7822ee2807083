"""Decode a photo to an upright BGR array no larger than detection and a 300 px crop need.

The header is read first with Pillow (``Image.open`` parses only the header), so a pixel bomb
or an empty, unknown or truncated file is refused before any pixel is decoded. JPEG, and PNG /
WebP without alpha, then go through ``cv2.imdecode`` with the largest
``IMREAD_REDUCED_COLOR_{2,4,8}`` that keeps the long side >= ``min_long_side``: for JPEG the
reduction happens inside the DCT, which halves a 12 MP decode. imdecode applies EXIF
orientation itself. Everything else (HEIC/HEIF, alpha, GIF, BMP, TIFF, oriented PNG/WebP) goes
through Pillow, with ``ImageOps.exif_transpose`` and alpha flattened onto white.
"""

from __future__ import annotations

import io
import math
import threading
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from posterflow.crop.models import PhotoError

_REDUCED_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}
# Formats OpenCV decodes as well as Pillow (MPO is a camera JPEG with extra frames appended).
_CV2_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP"})
_JPEG_FORMATS = frozenset({"JPEG", "MPO"})
_ORIENTATION_TAG = 0x0112
_WHITE = (255, 255, 255)

_heif_lock = threading.Lock()
_heif_registered = False


@dataclass(frozen=True)
class ImageHeader:
    format: str
    width: int  # as stored
    height: int
    orientation: int  # EXIF 1-8; 1 when absent
    mode: str
    has_alpha: bool

    @property
    def upright_size(self) -> tuple[int, int]:
        # Orientations 5-8 turn the image by 90 degrees.
        if self.orientation in (5, 6, 7, 8):
            return self.height, self.width
        return self.width, self.height


@dataclass(frozen=True)
class DecodedImage:
    bgr: np.ndarray  # H x W x 3 uint8, upright
    source_width: int  # the upright full-resolution size
    source_height: int
    scale: float  # bgr pixels per source pixel (1, 1/2, 1/4 or 1/8)
    format: str
    decoder: str  # "opencv" or "pillow"


def reduction_factor(long_side: int, min_long_side: int) -> int:
    """The largest of 1, 2, 4, 8 that keeps ``long_side / factor >= min_long_side``."""
    for factor in (8, 4, 2):
        if long_side // factor >= min_long_side:
            return factor
    return 1


def _ensure_heif() -> None:
    # Registration imports libheif (~25 ms), so only photos that look like HEIF pay for it.
    global _heif_registered
    with _heif_lock:
        if _heif_registered:
            return
        try:
            from pillow_heif import register_heif_opener
        except ImportError as exc:
            raise PhotoError("unsupported_format", "HEIC/HEIF support (pillow-heif) is not installed") from exc
        register_heif_opener()
        _heif_registered = True


def _looks_like_heif(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and data[8:12] in (
        b"heic",
        b"heix",
        b"hevc",
        b"hevx",
        b"mif1",
        b"msf1",
        b"heim",
        b"heis",
    )


def _open(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise PhotoError("empty", "the file is empty (0 bytes)")
    if _looks_like_heif(data):
        _ensure_heif()
    try:
        with warnings.catch_warnings():
            # We apply our own pixel limit below; Pillow's warning band (89-179 MP) is noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise PhotoError("pixel_bomb", f"the image declares too many pixels ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise PhotoError("not_an_image", "not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise PhotoError("corrupt", f"the image header is unreadable ({exc})") from exc
    width, height = img.size
    if width <= 0 or height <= 0:
        raise PhotoError("corrupt", f"the image declares {width}x{height} pixels")
    if width * height > max_pixels:
        raise PhotoError(
            "pixel_bomb",
            f"{width}x{height} = {width * height / 1e6:.0f} MP exceeds the limit of {max_pixels / 1e6:.0f} MP",
        )
    return img


def read_header(data: bytes, *, max_pixels: int = 100_000_000) -> ImageHeader:
    """Format, stored size and orientation from the header only. Raises :class:`PhotoError`."""
    return _header(_open(data, max_pixels))


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation from what the header parse already holds. ``Image.getexif()`` is
    avoided for PNG: without an eXIf chunk before the pixels it decodes the whole image."""
    try:
        if img.format in ("TIFF", "MPO"):
            value = img.getexif().get(_ORIENTATION_TAG, 1)
        else:
            raw = img.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
            value = exif.get(_ORIENTATION_TAG, 1)
        orientation = int(value)
    except Exception:  # a malformed EXIF block must not make the photo undecodable
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def _header(img: Image.Image) -> ImageHeader:
    orientation = _orientation(img)
    mode = img.mode
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    return ImageHeader(
        format=img.format or "UNKNOWN",
        width=img.size[0],
        height=img.size[1],
        orientation=orientation,
        mode=mode,
        has_alpha=has_alpha,
    )


def jpeg_is_complete(data: bytes) -> bool:
    """True when the JPEG has its end-of-image marker after the first scan.

    Marker segments are walked (skipping EXIF, whose thumbnail has its own EOI) up to the first
    start-of-scan; after it, entropy-coded data stuffs every 0xFF byte, so FF D9 can only be
    the real EOI. Data appended after the EOI (motion photos) does not matter."""
    pos, end = 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
            continue
        if marker == 0xD9:
            return False  # EOI before any scan: no image data
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:
            # rfind: a complete file ends with FF D9, so this is O(1) for the common case.
            return data.rfind(b"\xff\xd9", pos + 2 + length) >= 0
        pos += 2 + length
    return False


def decode(data: bytes, *, min_long_side: int = 1000, max_pixels: int = 100_000_000) -> DecodedImage:
    """Decode ``data`` upright, reduced by 1/2/4/8 while the long side stays >= ``min_long_side``.
    Raises :class:`PhotoError` for empty, unknown, truncated, corrupt or oversized images."""
    img = _open(data, max_pixels)
    header = _header(img)
    src_w, src_h = header.upright_size
    factor = reduction_factor(max(src_w, src_h), min_long_side)
    if header.format in _JPEG_FORMATS and not jpeg_is_complete(data):
        raise PhotoError("truncated", "the JPEG ends before its end-of-image marker")
    use_cv2 = header.format in _CV2_FORMATS and not header.has_alpha
    # imdecode honours EXIF orientation for JPEG; for PNG/WebP let Pillow handle the rare tag.
    if use_cv2 and (header.format in _JPEG_FORMATS or header.orientation == 1):
        bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _REDUCED_FLAGS[factor])
        if bgr is not None and bgr.ndim == 3 and bgr.shape[2] == 3:
            return _result(bgr, src_w, src_h, header.format, "opencv")
        # OpenCV refused what Pillow could parse: give Pillow the last word before failing.
    bgr = _decode_pillow(img, factor)
    return _result(bgr, src_w, src_h, header.format, "pillow")


def _result(bgr: np.ndarray, src_w: int, src_h: int, fmt: str, decoder: str) -> DecodedImage:
    # OpenCV reads EXIF with its own parser; if it turned the image where ours (which gave up
    # on a malformed block) did not, trust the pixels' aspect.
    # Near-square images are left alone: reduced decoding rounds their sides.
    src_ratio, got_ratio = src_w / src_h, bgr.shape[1] / bgr.shape[0]
    if abs(math.log(src_ratio)) > 0.05 and abs(math.log(got_ratio * src_ratio)) < abs(math.log(got_ratio / src_ratio)):
        src_w, src_h = src_h, src_w
    scale = bgr.shape[1] / src_w
    return DecodedImage(bgr=bgr, source_width=src_w, source_height=src_h, scale=scale, format=fmt, decoder=decoder)


def _decode_pillow(img: Image.Image, factor: int) -> np.ndarray:
    try:
        img.load()
        rgb = _flatten(ImageOps.exif_transpose(img) or img)
        if factor > 1:
            rgb = rgb.reduce(factor)  # box filter, like the JPEG DCT reduction
    except PhotoError:
        raise
    except OSError as exc:
        reason = "truncated" if "truncated" in str(exc).lower() else "corrupt"
        raise PhotoError(reason, f"the image data cannot be decoded ({exc})") from exc
    except (ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise PhotoError("corrupt", f"the image data cannot be decoded ({exc})") from exc
    arr = np.asarray(rgb)
    return np.ascontiguousarray(arr[:, :, ::-1])


def _flatten(img: Image.Image) -> Image.Image:
    """RGB, with any transparency composited onto white (transparent pixels often hide black)."""
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img if img.mode == "RGB" else img.convert("RGB")
