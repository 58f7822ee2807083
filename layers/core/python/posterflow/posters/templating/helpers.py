"""Functions HTML templates may call (the sandbox's globals besides ``lipsum``).

``{{ qr(offer_url) }}`` is the QR code of a value as an inline SVG ``data:`` URL, for an
``<img src>`` — the same encoder as canvas ``qr`` mappings (:mod:`posterflow.posters.qr`). Its
cost is bounded: a value over a QR code's capacity fails before encoding, codes are cached per
value, the render's clock is read before each encoding (a large code takes ~0.1 s, so the
every-32-calls check would be late), and its output counts against the size budget like any
other call's.
"""

from __future__ import annotations

from typing import Any

from posterflow.errors import Reason
from posterflow.posters import qr as qr_codes
from posterflow.posters.canvas.errors import QrTooLong
from posterflow.posters.templating import budgets
from posterflow.posters.templating.errors import TemplateRenderError


def qr(value: Any) -> str:
    """``data:image/svg+xml;base64,…`` of ``value``'s QR code; a value that cannot be encoded
    fails the render with ``qr_too_long``. Undefined or empty values make no code (an empty string)."""
    text = "" if value is None else str(value)
    if not text:
        return ""
    budget = budgets._RENDER.get()
    if budget is not None:
        budget.checkpoint()
    try:
        return qr_codes.qr_data_url(text)
    except QrTooLong as exc:
        raise TemplateRenderError(f"qr(): {exc.message}", reason=Reason.QR_TOO_LONG, details=exc.details) from None
