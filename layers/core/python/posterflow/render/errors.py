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


class CanvasRenderError(RenderError):
    """A Fabric.js canvas could not be drawn (``posterflow.render.canvas``); ``details`` names
    the objects. A text that does not fit is :class:`posterflow.posters.canvas.errors.TextOverflow`."""

    def __init__(self, message: str, *, request_id: str | None = None, details: object = None) -> None:
        super().__init__(message, request_id=request_id)
        self.details = details


class CanvasLoadFailed(CanvasRenderError):
    """Fabric's ``loadFromJSON`` refused the canvas; the message is Fabric's."""

    reason = Reason.CANVAS_LOAD_FAILED


class UnknownObjectType(CanvasRenderError):
    """An object's ``type`` is no class Fabric knows (in any spelling)."""

    reason = Reason.UNKNOWN_OBJECT_TYPE


class CanvasSourceRefused(CanvasRenderError):
    """An image of the canvas was refused by the render network policy (named in the message)."""

    reason = Reason.URL_BLOCKED
