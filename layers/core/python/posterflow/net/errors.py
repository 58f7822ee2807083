"""The net package's errors, each a :class:`~posterflow.errors.PosterflowError` with its
reason; the message says why, and what to give instead."""

from __future__ import annotations

from posterflow.errors import PosterflowError, Reason


class FetchError(PosterflowError, ValueError):
    """A source that could not be fetched."""

    reason = Reason.URL_FAILED


class FetchRefused(FetchError):
    """Refused before any request: not allowed by the policy, or not what it claims to be."""

    reason = Reason.URL_BLOCKED


class FetchFailed(FetchError):
    """Allowed, but the fetch failed: an HTTP error, the network, a body over the limit."""

    reason = Reason.URL_FAILED


class SourceError(PosterflowError, ValueError):
    """A source that cannot be used (:mod:`posterflow.net.sources`)."""

    reason = Reason.SOURCE_REFUSED


class SourceRefused(SourceError):
    reason = Reason.SOURCE_REFUSED


class SourceNotFound(SourceError):
    reason = Reason.SOURCE_NOT_FOUND


class SourceUnreadable(SourceError):
    reason = Reason.SOURCE_FAILED


class SourceChanged(SourceUnreadable):
    reason = Reason.SOURCE_CHANGED


class SourceTooLarge(SourceUnreadable):
    reason = Reason.SOURCE_TOO_LARGE
