"""QR codes of a value, as crisp SVG: one encoder for canvas ``qr`` mappings and the HTML
templates' ``{{ qr(value) }}`` helper.

segno (pure Python) encodes with error correction M (never boosted, so a code's size depends
only on its value) and the standard 4-module quiet zone, drawn light so the code decodes on any
background. The SVG is the module grid itself (``viewBox`` of N×N modules, one path, no
anti-aliased edges: ``shape-rendering="crispEdges"``), so it scales to any box without blur;
a box that is not square gets the code centred at its shorter side.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import Any

from posterflow.posters.canvas.errors import QrTooLong

ERROR_CORRECTION = "m"
QUIET_ZONE = 4
"""Modules of light margin on every side (ISO/IEC 18004's minimum for QR codes)."""
MAX_QR_BYTES = 2331
"""The most a QR code (version 40, level M, byte mode) holds; longer values fail before encoding."""


def _make(value: str) -> Any:
    # Imported on first use: the API function imports the template helpers at cold start but
    # seldom draws a code (segno's import is ~45 ms).
    import segno

    try:
        return segno.make(value, error=ERROR_CORRECTION, boost_error=False, micro=False)
    except (segno.DataOverflowError, ValueError) as exc:
        raise QrTooLong(f"value cannot be encoded as a QR code: {exc}",
                        details={"bytes": len(value.encode("utf-8"))}) from None


def _check(value: str) -> bytes:
    data = value.encode("utf-8")
    if len(data) > MAX_QR_BYTES:
        raise QrTooLong(f"value of {len(data)} bytes is too long for a QR code (at most {MAX_QR_BYTES} bytes at "
                        f"error correction M)", details={"bytes": len(data), "max_bytes": MAX_QR_BYTES})
    return data


@lru_cache(maxsize=1024)
def qr_svg(value: str, width: int | None = None, height: int | None = None) -> str:
    """The QR code of ``value`` as an SVG document; ``width``/``height`` (CSS pixels) set its
    intrinsic size (the module grid when unset). Raises :class:`QrTooLong`."""
    _check(value)
    code = _make(value)
    size = code.symbol_size(border=QUIET_ZONE)[0]
    runs: list[str] = []
    for y, row in enumerate(code.matrix_iter(border=QUIET_ZONE)):
        x = 0
        cells = list(row)
        while x < size:
            if cells[x]:
                start = x
                while x < size and cells[x]:
                    x += 1
                runs.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    w, h = width or size, height or size
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {size} {size}" '
            f'preserveAspectRatio="xMidYMid meet" shape-rendering="crispEdges">'
            f'<rect width="{size}" height="{size}" fill="#fff"/><path fill="#000" d="{"".join(runs)}"/></svg>')


def qr_data_url(value: str, width: int | None = None, height: int | None = None) -> str:
    """:func:`qr_svg` as a ``data:image/svg+xml;base64,…`` URL (for an ``<img src>`` or a Fabric image)."""
    svg = qr_svg(value, width, height)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("ascii")).decode("ascii")

