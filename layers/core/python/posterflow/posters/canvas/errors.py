"""The canvas package's errors, each a :class:`~posterflow.errors.PosterflowError` with its reason."""

from __future__ import annotations

from typing import Any

from posterflow.errors import PosterflowError, Reason


class CanvasError(PosterflowError, ValueError):
    """A canvas template, its mappings or one item's filling is unusable; the message names the
    offending object, mapping, field or source (``details`` carries them too)."""

    reason = Reason.CANVAS_INVALID


class CanvasInvalid(CanvasError):
    """The upload is not a usable Fabric canvas (not JSON, not Fabric, an unknown object type,
    over a limit): the API answers 422."""

    reason = Reason.CANVAS_INVALID


class CanvasTooLarge(CanvasInvalid):
    """The canvas JSON is over its size limit (``POSTERFLOW_CANVAS_MAX_BYTES``): 413 as a too-big HTML template."""

    reason = Reason.TEMPLATE_TOO_LARGE


class MappingInvalid(CanvasError):
    """A variable mapping cannot apply to its object (index out of range, no box, unknown type)."""

    reason = Reason.MAPPING_INVALID


class TextOverflow(CanvasError):
    """A text object does not fit its box even at its minimum scale; never cut off silently.
    Raised by the renderer; ``details`` = ``{"index": <top-level index>, "field": <field or None>}``."""

    reason = Reason.TEXT_OVERFLOW

    def __init__(self, message: str, *, index: int, field: str | None = None, details: Any = None) -> None:
        super().__init__(message, details=details or {"index": index, "field": field})
        self.index = index
        self.field = field


class QrTooLong(CanvasError):
    """A QR mapping's value cannot be encoded (too long for any QR version at level M)."""

    reason = Reason.QR_TOO_LONG
