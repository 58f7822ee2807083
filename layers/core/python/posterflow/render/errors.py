"""The render package's errors, each a :class:`~posterflow.errors.PosterflowError` with its reason."""

from __future__ import annotations

from posterflow.errors import PosterflowError, Reason


class UnsupportedSize(PosterflowError, ValueError):
    """Unknown preset or out-of-range dimensions (the API answers 422)."""

    reason = Reason.UNSUPPORTED_OUTPUT


class UnsupportedFormat(PosterflowError, ValueError):
    """Unknown output format (the API answers 422)."""

    reason = Reason.UNSUPPORTED_OUTPUT


class RenderError(PosterflowError):
    """One render failed; ``reason`` is machine-readable, the message for people and item logs."""

    reason = Reason.RENDER_FAILED

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class RenderTimeout(RenderError):
    reason = Reason.TIMEOUT


class BrowserCrashed(RenderError):
    reason = Reason.BROWSER_CRASHED


class ChromiumNotFound(RenderError):
    reason = Reason.NO_BROWSER
