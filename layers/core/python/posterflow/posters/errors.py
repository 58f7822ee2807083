"""The posters package's errors, each a :class:`~posterflow.errors.PosterflowError` with its
reason (the template language's own are in :mod:`posterflow.posters.templating.errors`)."""

from __future__ import annotations

from typing import Any

from posterflow.errors import PosterflowError, Reason


class TemplateNotFound(PosterflowError, LookupError):
    """No such template (or version) for this tenant."""

    reason = Reason.TEMPLATE_NOT_FOUND


class InvalidTemplateId(PosterflowError, ValueError):
    """Not a template id (``<section>_v<N>`` or ``<section>_latest``)."""

    reason = Reason.INVALID_TEMPLATE_ID


class OverlayError(PosterflowError, ValueError):
    """An overlay could not be applied; the message says why (fails the item)."""

    reason = Reason.OVERLAY_FAILED


class PosterError(PosterflowError):
    """One poster failed for its input; ``retryable`` when another try may succeed (a crashed
    browser). A synchronous caller gets the status of its reason (``posterflow.api.errors``)."""

    reason = Reason.RENDER_FAILED

    def __init__(self, reason: Reason, message: str, details: Any = None, *, retryable: bool = False) -> None:
        super().__init__(message, reason=reason, details=details)
        self.retryable = retryable

    def as_dict(self) -> dict[str, Any]:
        """What the render function answers a synchronous invoke with."""
        return {"reason": self.reason.value, "code": self.code, "message": self.message, "details": self.details}


class ProfileError(PosterflowError):
    """One identifier's look-up failed; the message is shown on the failed item."""

    reason = Reason.PROFILE_FAILED

    def __init__(self, identifier: str, message: str) -> None:
        super().__init__(message, details={"identifier": identifier})
        self.identifier = identifier


class NotConfigured(PosterflowError):
    """No (usable) profile source is configured: the request cannot be served at all."""

    reason = Reason.PROFILE_SOURCE_NOT_CONFIGURED
