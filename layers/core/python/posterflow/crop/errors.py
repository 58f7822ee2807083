"""The crop package's errors, each a :class:`~posterflow.errors.PosterflowError` whose reason
the failed item records."""

from __future__ import annotations

from posterflow.errors import PosterflowError, Reason


class PhotoError(PosterflowError):
    """This photo cannot be cropped. ``reason`` is a stable code recorded on the item:
    ``empty``, ``too_large``, ``not_an_image``, ``unsupported_format``, ``pixel_bomb``,
    ``truncated``, ``corrupt``."""

    reason = Reason.CORRUPT

    def __init__(self, reason: Reason | str, message: str) -> None:
        super().__init__(message, reason=reason)


class SourceError(PosterflowError):
    """The photo could not be read (missing key, blocked or failing URL); fails the item.
    Same shape as :class:`PhotoError`: a reason and a message."""

    reason = Reason.SOURCE_FAILED

    def __init__(self, reason: Reason | str, message: str) -> None:
        super().__init__(message, reason=reason)
