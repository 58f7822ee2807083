"""Square face crops: the public entry point :func:`crop_photo`.

Geometry (all in the decoded image's pixels, reported in source pixels): the face box grows
by ``padding`` x its size on every side and by a further ``hair`` x its height above (thumbor
adds 12% above so the crop does not cut through the hair), becomes the smallest square holding
that, then is shrunk to fit and shifted to lie inside the image. No face is not an error: a
centre square is returned with ``face_detected=False`` (what imgix and Serverless Image Handler
do).
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from posterflow.crop import decode as decoding
from posterflow.crop.detector import Face, get_detector
from posterflow.crop.heap import keep_buffers_in_heap
from posterflow.crop.models import Box, CropOptions, CropResult, PhotoError, Timings

_ENCODINGS = {
    "jpeg": (".jpg", "image/jpeg", cv2.IMWRITE_JPEG_QUALITY),
    "webp": (".webp", "image/webp", cv2.IMWRITE_WEBP_QUALITY),
}


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


def face_square(face: Face, width: int, height: int, padding: float = 0.20, hair: float = 0.12) -> Box:
    """The square around ``face`` (padding on each side, extra above), clamped to the image."""
    left = face.x - padding * face.w
    right = face.x + face.w + padding * face.w
    top = face.y - (padding + hair) * face.h
    bottom = face.y + face.h + padding * face.h
    side = min(max(right - left, bottom - top), width, height)
    return _square_at((left + right) / 2, (top + bottom) / 2, side, width, height)


def centre_square(width: int, height: int) -> Box:
    side = min(width, height)
    return _square_at(width / 2, height / 2, side, width, height)


def _square_at(cx: float, cy: float, side: float, width: int, height: int) -> Box:
    s = max(1, min(round(side), width, height))
    x = min(max(0, round(cx - s / 2)), width - s)
    y = min(max(0, round(cy - s / 2)), height - s)
    return Box(x=x, y=y, w=s, h=s)


def _to_source(box: Box, scale: float, src_w: int, src_h: int) -> Box:
    x = min(src_w - 1, round(box.x / scale))
    y = min(src_h - 1, round(box.y / scale))
    return Box(x=x, y=y, w=max(1, min(src_w - x, round(box.w / scale))), h=max(1, min(src_h - y, round(box.h / scale))))


def _face_box(face: Face, scale: float, src_w: int, src_h: int) -> Box:
    # Detections can reach past the border (a face cut by the frame); clip to the image.
    x0 = max(0.0, face.x / scale)
    y0 = max(0.0, face.y / scale)
    x1 = min(float(src_w), (face.x + face.w) / scale)
    y1 = min(float(src_h), (face.y + face.h) / scale)
    return Box(x=round(x0), y=round(y0), w=max(1, round(x1 - x0)), h=max(1, round(y1 - y0)))


def _render(bgr: np.ndarray, square: Box, options: CropOptions) -> tuple[bytes, float, float]:
    start = time.perf_counter()
    region = bgr[square.y : square.y + square.h, square.x : square.x + square.w]
    # INTER_AREA averages when shrinking (no aliasing); cubic is sharper when enlarging.
    interpolation = cv2.INTER_AREA if square.w >= options.size else cv2.INTER_CUBIC
    resized = cv2.resize(region, (options.size, options.size), interpolation=interpolation)
    crop_ms = _ms(start)
    start = time.perf_counter()
    extension, _, quality_flag = _ENCODINGS[options.format]
    ok, encoded = cv2.imencode(extension, resized, [quality_flag, options.quality])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {options.format}")
    return encoded.tobytes(), crop_ms, _ms(start)


def crop_photo(data: bytes, options: CropOptions | None = None) -> list[CropResult]:
    """Crop one photo: the best face (or every face with ``all_faces``, best first), else a
    centre crop with ``face_detected=False``. Raises :class:`PhotoError` for a photo that
    cannot be decoded or is refused (empty, too large, pixel bomb, truncated, corrupt)."""
    opts = options or CropOptions()
    keep_buffers_in_heap()
    if len(data) > opts.max_bytes:
        raise PhotoError("too_large", f"{len(data)} bytes exceeds the limit of {opts.max_bytes}")
    start = time.perf_counter()
    decoded = decoding.decode(data, min_long_side=opts.min_decode_side, max_pixels=opts.max_pixels)
    decode_ms = _ms(start)

    start = time.perf_counter()
    faces = get_detector(opts.detect_size, opts.min_score).detect(decoded.bgr)
    detect_ms = _ms(start)

    height, width = decoded.bgr.shape[:2]
    src_w, src_h = decoded.source_width, decoded.source_height
    extension, content_type, _ = _ENCODINGS[opts.format]
    chosen: list[Face | None] = list(faces[: opts.max_faces] if opts.all_faces else faces[:1]) or [None]
    results: list[CropResult] = []
    for rank, face in enumerate(chosen):
        square = (
            centre_square(width, height) if face is None else face_square(face, width, height, opts.padding, opts.hair)
        )
        output, crop_ms, encode_ms = _render(decoded.bgr, square, opts)
        results.append(
            CropResult(
                face_detected=face is not None,
                face_rank=None if face is None else rank,
                box=None if face is None else _face_box(face, decoded.scale, src_w, src_h),
                score=None if face is None else round(face.score, 4),
                crop_box=_to_source(square, decoded.scale, src_w, src_h),
                faces_found=len(faces),
                width=opts.size,
                height=opts.size,
                source_width=src_w,
                source_height=src_h,
                source_format=decoded.format,
                content_type=content_type,
                extension=extension,
                output=output,
                timings=Timings(
                    decode_ms=decode_ms,
                    detect_ms=detect_ms,
                    crop_ms=crop_ms,
                    encode_ms=encode_ms,
                    total_ms=round(decode_ms + detect_ms + crop_ms + encode_ms, 3),
                ),
            )
        )
    return results
