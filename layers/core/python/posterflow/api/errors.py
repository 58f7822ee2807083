"""One error shape for every 4xx/5xx, ``{"error": {"code", "message", "details"}}``, and the
one table from reason to status (:data:`STATUS`).

Route code raises a :class:`posterflow.errors.PosterflowError` (its own kind here,
:class:`ApiError`) with a reason; the app's one exception handler answers it with the status
of its reason. Reasons only items (and failed jobs) record are in :data:`ITEM_ONLY`."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from posterflow.errors import PosterflowError, Reason

_BAD_INPUT = 422
_NOT_FOUND = 404
_TOO_LARGE = 413
_CONFLICT = 409
_FORBIDDEN = 403

STATUS: dict[Reason, int] = {
    Reason.INTERNAL: 500,
    # The request's shape.
    Reason.MALFORMED_JSON: 400,
    Reason.INVALID_ENCODING: 400,
    Reason.INVALID_MULTIPART: 400,
    Reason.UNSUPPORTED_MEDIA_TYPE: 415,
    Reason.PAYLOAD_TOO_LARGE: _TOO_LARGE,
    **dict.fromkeys((
        Reason.VALIDATION_ERROR, Reason.TOO_DEEP, Reason.NUMBER_OUT_OF_RANGE, Reason.INVALID_REQUEST,
        Reason.INVALID_LIMIT, Reason.INVALID_CURSOR, Reason.INVALID_STATUS, Reason.INVALID_LEVEL,
        Reason.INVALID_DATE,
        Reason.INVALID_IDEMPOTENCY_KEY,
        Reason.IDEMPOTENCY_KEY_REUSED,
        # Bulk, batch and template input.
        Reason.INVALID_TEMPLATE, Reason.INVALID_CSV, Reason.COLUMNS_MISMATCH, Reason.NO_ROWS, Reason.INVALID_IMAGE,
        Reason.MISSING_FILE, Reason.INVALID_ZIP, Reason.NO_PHOTOS,
        Reason.MERGE_PDF_NEEDS_PDF, Reason.SYNC_BATCH_TOO_LARGE,
        Reason.INVALID_TEMPLATE_ID, Reason.TEMPLATE_ERROR, Reason.TEMPLATE_INVALID, Reason.TEMPLATE_SYNTAX_ERROR,
        Reason.TEMPLATE_OUTPUT_TOO_LARGE, Reason.TEMPLATE_TIMEOUT, Reason.TEMPLATE_TOO_DEEP,
        Reason.MISSING_PLACEHOLDERS, Reason.UNSUPPORTED_OUTPUT, Reason.JAVASCRIPT_DISABLED,
        Reason.CANVAS_INVALID, Reason.MAPPING_INVALID, Reason.TEXT_OVERFLOW, Reason.QR_TOO_LONG,
        Reason.CANVAS_LOAD_FAILED, Reason.UNKNOWN_OBJECT_TYPE,
        # A synchronous render's input problems.
        Reason.RENDER_FAILED, Reason.OVERLAY_NOT_FOUND, Reason.OVERLAY_REFUSED, Reason.OVERLAY_FAILED,
    ), _BAD_INPUT),
    **dict.fromkeys((
        Reason.NO_ROUTE, Reason.NOT_FOUND, Reason.JOB_NOT_FOUND, Reason.ITEM_NOT_FOUND, Reason.BATCH_NOT_FOUND,
        Reason.TEMPLATE_NOT_FOUND, Reason.NO_ARCHIVE, Reason.ARCHIVE_EXPIRED,
    ), _NOT_FOUND),
    **dict.fromkeys((
        Reason.ITEM_TOO_LARGE, Reason.METADATA_TOO_LARGE, Reason.TOO_MANY_ITEMS, Reason.TOO_MANY_ROWS,
        Reason.TOO_MANY_IDENTIFIERS, Reason.TOO_MANY_IMAGES, Reason.TEMPLATE_TOO_LARGE,
    ), _TOO_LARGE),
    **dict.fromkeys((
        Reason.IDEMPOTENCY_IN_PROGRESS, Reason.ARCHIVE_NOT_READY, Reason.JOB_STATE_CONFLICT, Reason.BATCH_CONFLICT,
    ), _CONFLICT),
    **dict.fromkeys((Reason.MISSING_TOKEN, Reason.INVALID_TOKEN, Reason.LINK_EXPIRED, Reason.INVALID_API_KEY),
                    _FORBIDDEN),
    Reason.UNAUTHENTICATED: 401,
    # Not the caller's fault.
    Reason.PROFILE_SOURCE_NOT_CONFIGURED: 503,
    Reason.BROWSER_CRASHED: 503,
    Reason.NO_BROWSER: 503,
    Reason.TIMEOUT: 504,
    Reason.RENDER_FUNCTION_FAILED: 502,
}

ITEM_ONLY: frozenset[Reason] = frozenset({
    Reason.PROFILE_FAILED,
    Reason.SOURCE_REFUSED, Reason.SOURCE_NOT_FOUND, Reason.SOURCE_FAILED, Reason.SOURCE_CHANGED,
    Reason.SOURCE_TOO_LARGE, Reason.URL_BLOCKED, Reason.URL_FAILED,
    Reason.EMPTY, Reason.TOO_LARGE, Reason.NOT_AN_IMAGE, Reason.UNSUPPORTED_FORMAT, Reason.PIXEL_BOMB,
    Reason.TRUNCATED, Reason.CORRUPT, Reason.OBJECT_CHANGED,
    Reason.NOT_A_ZIP, Reason.SPANNED, Reason.TOO_MANY_ENTRIES, Reason.TOTAL_SIZE, Reason.COMPRESSION_RATIO,
    Reason.DIRECTORY, Reason.MACOS_METADATA, Reason.DS_STORE, Reason.RESOURCE_FORK, Reason.HIDDEN_FILE,
    Reason.ENCRYPTED, Reason.UNSUPPORTED_METHOD, Reason.ENTRY_TOO_LARGE, Reason.CORRUPT_ENTRY,
    Reason.CRC_MISMATCH, Reason.SIZE_MISMATCH,
    Reason.ENCODING, Reason.BINARY, Reason.MALFORMED, Reason.LINE_TOO_LONG, Reason.DUPLICATE_COLUMN,
    Reason.MISSING_COLUMNS, Reason.ROW_LIMIT, Reason.EXTRA_CELLS, Reason.MISSING_VALUES, Reason.ROW_TOO_LARGE,
    Reason.INPUT_UNUSABLE, Reason.CANCELLED, Reason.STALLED, Reason.RETRIES_EXHAUSTED,
    Reason.MERGE_FAILED,
})
"""Reasons recorded on failed items (and failed jobs), never answered by the API."""


class ApiError(PosterflowError):
    """A request the API refuses for a reason of its own (limits, cursors, idempotency …)."""

    def __init__(self, reason: Reason, message: str, details: Any = None) -> None:
        super().__init__(message, reason=reason, details=details)

    @property
    def status(self) -> int:
        """The HTTP status this error is answered with (:data:`STATUS`)."""
        return status_of(self.reason)


def status_of(reason: Reason) -> int:
    """The HTTP status of a reason; 500 for one the API never answers (an item-only reason
    reaching a route is a bug, not bad input)."""
    return STATUS.get(reason, 500)


def error_response(status: int, code: str, message: str, details: Any = None) -> Response[str]:
    body = {"error": {"code": code, "message": message, "details": details}}
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps(body, default=str))


def response_of(exc: PosterflowError) -> Response[str]:
    """The answer to an error: its reason's status and code, its message and details."""
    return error_response(status_of(exc.reason), exc.code, exc.message, exc.details)


def not_found(what: str) -> ApiError:
    return ApiError(Reason.NOT_FOUND, f"{what} not found")
