"""The client's errors. Every error the API answers (``{"error": {"code", "message",
"details"}}`` with a 4xx/5xx status) is an :class:`ApiError`, or the subclass for its status."""

from __future__ import annotations

from typing import Any


class PosterflowError(Exception):
    """Base of every error this package raises."""


class ApiError(PosterflowError):
    """The API answered with an error status.

    ``status`` is the HTTP status; ``code``, ``message`` and ``details`` are the API's
    ``error`` object (``code`` is ``"http_<status>"`` when the body was not the API's shape)."""

    def __init__(self, status: int, code: str, message: str, details: Any = None, *,
                 method: str = "", url: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details
        self.method, self.url = method, url
        self.headers: dict[str, str] = dict(headers or {})


class BadRequest(ApiError):
    """400: the body could not be read (malformed JSON, bad encoding)."""


class Unauthorized(ApiError):
    """401 / 403: no or a wrong API key."""


class NotFound(ApiError):
    """404: no such job / template / route (another tenant's ids answer exactly this)."""


class Conflict(ApiError):
    """409: e.g. a caller-chosen batch id already in use."""


class PayloadTooLarge(ApiError):
    """413: the request (or a template) is over a size limit."""


class ZipTooLarge(PayloadTooLarge):
    """A ZIP too big for ``POST /api/batch/upload-zip`` (a form of at most ``max_bytes``:
    ``POSTERFLOW_UPLOAD_ZIP_MAX_BYTES`` on the server, 4 MiB by default). Upload it with
    :meth:`Client.upload_zip` instead: ``POST /api/uploads`` and a presigned PUT of up to 5 GB.
    ``status`` is 413 whether the server said so or the client refused before sending
    (``code`` ``zip_too_large``); ``size_bytes`` is the form's size."""

    def __init__(self, status: int, code: str, message: str, details: Any = None, *, max_bytes: int | None = None,
                 size_bytes: int | None = None, **kwargs: Any) -> None:
        super().__init__(status, code, message, details, **kwargs)
        self.max_bytes, self.size_bytes = max_bytes, size_bytes


class UnsupportedMediaType(ApiError):
    """415: the route takes JSON."""


class ValidationFailed(ApiError):
    """422: the request failed validation; ``details`` lists the problems."""


class RateLimited(ApiError):
    """429 after the client's retries ran out."""


class ServerError(ApiError):
    """5xx after the client's retries ran out."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest, 401: Unauthorized, 403: Unauthorized, 404: NotFound, 409: Conflict,
    413: PayloadTooLarge, 415: UnsupportedMediaType, 422: ValidationFailed, 429: RateLimited,
}


def error_class(status: int) -> type[ApiError]:
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, ApiError)


class TransportError(PosterflowError):
    """The API could not be reached (connection refused, timeouts) after the client's retries."""


class UploadFailed(PosterflowError):
    """The presigned PUT of an upload failed; the job exists (``job_id``) and waits for its file."""

    def __init__(self, message: str, *, job_id: str, status: int | None = None) -> None:
        super().__init__(message)
        self.job_id, self.status = job_id, status


class WaitTimeout(PosterflowError, TimeoutError):
    """:meth:`Client.wait` gave up; ``last_status`` is the job's status when it did."""

    def __init__(self, job_id: str, timeout_s: float, last_status: str | None, job: Any = None) -> None:
        super().__init__(f"job {job_id} not finished after {timeout_s:g} s (last status: {last_status})")
        self.job_id, self.timeout_s, self.last_status, self.job = job_id, timeout_s, last_status, job


class InvalidSignature(PosterflowError):
    """A webhook whose ``X-Posterflow-Signature`` is missing, malformed, wrong or stale.

    ``reason`` is one of ``"malformed"``, ``"mismatch"``, ``"stale"``."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class InvalidPayload(PosterflowError, ValueError):
    """A correctly signed webhook whose body is not a JSON object."""
