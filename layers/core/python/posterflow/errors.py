"""The platform's one error model: :class:`Reason`, every reason code the system uses, and
:class:`PosterflowError`, the base of every error the library raises for bad input, a bad
item or a refused request.

A reason is a fixed string: the API answers it as ``error.code`` (with the status
``posterflow.api.errors.STATUS`` gives it), failed items record it as ``error_code`` beside
their human-readable ``error``, and callers decide by class or reason, never by message text.
Each package keeps its own error classes (``posterflow.jobs.models``, ``posterflow.net.fetch``,
``posterflow.posters.templating.errors`` …); each derives from :class:`PosterflowError` with a
class-level default reason.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Reason(StrEnum):
    """Every reason code. The value is unique; :attr:`code` is what callers see, the value
    except for the few reasons that exist only because one code answers two statuses."""

    # Unexpected: a bug or an infrastructure failure, never bad input.
    INTERNAL = "internal_error"

    # The request itself (the body gate, validation, routing).
    MALFORMED_JSON = "malformed_json"
    INVALID_ENCODING = "invalid_encoding"
    VALIDATION_ERROR = "validation_error"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    TOO_DEEP = "too_deep"
    NUMBER_OUT_OF_RANGE = "number_out_of_range"
    NO_ROUTE = "no_route"
    INVALID_REQUEST = "invalid_request"
    INVALID_LIMIT = "invalid_limit"
    INVALID_CURSOR = "invalid_cursor"
    INVALID_STATUS = "invalid_status"
    INVALID_LEVEL = "invalid_level"
    INVALID_DATE = "invalid_date"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_IN_PROGRESS = "idempotency_in_progress"

    # Things that do not exist (or not for this tenant).
    NOT_FOUND = "not_found"
    JOB_NOT_FOUND = "job_not_found"
    ITEM_NOT_FOUND = "item_not_found"
    BATCH_NOT_FOUND = "batch_not_found"
    TEMPLATE_NOT_FOUND = "template_not_found"
    NO_ARCHIVE = "no_archive"
    ARCHIVE_EXPIRED = "archive_expired"

    # State conflicts.
    ARCHIVE_NOT_READY = "archive_not_ready"
    JOB_STATE_CONFLICT = "job_state_conflict"
    BATCH_CONFLICT = "batch_conflict"

    # Download links (posterflow.tokens).
    MISSING_TOKEN = "missing_token"
    INVALID_TOKEN = "invalid_token"
    LINK_EXPIRED = "link_expired"
    # Job streams (posterflow.progress.sse): no credentials at all (401), an API key that is
    # not one of this API's (403).
    UNAUTHENTICATED = "unauthenticated"
    INVALID_API_KEY = "invalid_api_key"

    # Sizes and counts over a limit.
    ITEM_TOO_LARGE = "item_too_large"
    METADATA_TOO_LARGE = "metadata_too_large"
    TOO_MANY_ITEMS = "too_many_items"
    TOO_MANY_ROWS = "too_many_rows"
    TOO_MANY_IDENTIFIERS = "too_many_identifiers"
    TOO_MANY_IMAGES = "too_many_images"
    SYNC_BATCH_TOO_LARGE = "sync_batch_too_large"

    # Bulk and batch input.
    INVALID_TEMPLATE = "invalid_template"
    MERGE_PDF_NEEDS_PDF = "merge_pdf_needs_pdf"
    INVALID_CSV = "invalid_csv"
    COLUMNS_MISMATCH = "columns_mismatch"
    NO_ROWS = "no_rows"
    INVALID_IMAGE = "invalid_image"
    # The multipart ZIP upload (posterflow.api.routes_upload_zip).
    INVALID_MULTIPART = "invalid_multipart"
    MISSING_FILE = "missing_file"
    INVALID_ZIP = "invalid_zip"
    NO_PHOTOS = "no_photos"
    PROFILE_SOURCE_NOT_CONFIGURED = "profile_source_not_configured"
    PROFILE_FAILED = "profile_failed"

    # Templates (posterflow.posters.templating, template_store).
    INVALID_TEMPLATE_ID = "invalid_template_id"
    TEMPLATE_ERROR = "template_error"
    TEMPLATE_INVALID = "template_invalid"
    TEMPLATE_SYNTAX_ERROR = "template_syntax_error"
    TEMPLATE_TOO_LARGE = "template_too_large"  # the source (413)
    TEMPLATE_OUTPUT_TOO_LARGE = "template_output_too_large"  # a render's output: code template_too_large (422)
    TEMPLATE_TIMEOUT = "template_timeout"
    TEMPLATE_TOO_DEEP = "template_too_deep"
    MISSING_PLACEHOLDERS = "missing_placeholders"
    UNSUPPORTED_OUTPUT = "unsupported_output"
    JAVASCRIPT_DISABLED = "javascript_disabled"

    # Fabric.js canvas templates (posterflow.posters.canvas) and QR codes (posterflow.posters.qr).
    CANVAS_INVALID = "canvas_invalid"
    MAPPING_INVALID = "mapping_invalid"
    TEXT_OVERFLOW = "text_overflow"
    QR_TOO_LONG = "qr_too_long"

    # Rendering (posterflow.render).
    RENDER_FAILED = "render_failed"  # the page failed (422)
    RENDER_FUNCTION_FAILED = "render_function_failed"  # the render function crashed: code render_failed (502)
    TIMEOUT = "timeout"
    BROWSER_CRASHED = "browser_crashed"
    NO_BROWSER = "no_browser"
    CANVAS_LOAD_FAILED = "canvas_load_failed"  # Fabric could not load a canvas (its message)
    UNKNOWN_OBJECT_TYPE = "unknown_object_type"  # a canvas object type Fabric has no class for

    # Overlays on posters (posterflow.posters.overlay, pipeline).
    OVERLAY_NOT_FOUND = "overlay_not_found"
    OVERLAY_REFUSED = "overlay_refused"
    OVERLAY_FAILED = "overlay_failed"

    # Sources and fetches (posterflow.net).
    SOURCE_REFUSED = "source_refused"
    SOURCE_NOT_FOUND = "source_not_found"
    SOURCE_FAILED = "source_failed"
    SOURCE_CHANGED = "source_changed"
    SOURCE_TOO_LARGE = "source_too_large"
    URL_BLOCKED = "url_blocked"
    URL_FAILED = "url_failed"

    # Photos (posterflow.crop); NOT_FOUND above for a missing key.
    EMPTY = "empty"
    TOO_LARGE = "too_large"
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_FORMAT = "unsupported_format"
    PIXEL_BOMB = "pixel_bomb"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    OBJECT_CHANGED = "object_changed"

    # ZIP archives and their entries (posterflow.formats.zipindex); EMPTY, CORRUPT,
    # NOT_AN_IMAGE and OBJECT_CHANGED above too.
    NOT_A_ZIP = "not_a_zip"
    SPANNED = "spanned"
    TOO_MANY_ENTRIES = "too_many_entries"
    TOTAL_SIZE = "total_size"
    COMPRESSION_RATIO = "compression_ratio"
    DIRECTORY = "directory"
    MACOS_METADATA = "macos_metadata"
    DS_STORE = "ds_store"
    RESOURCE_FORK = "resource_fork"
    HIDDEN_FILE = "hidden_file"
    ENCRYPTED = "encrypted"
    UNSUPPORTED_METHOD = "unsupported_method"
    ENTRY_TOO_LARGE = "entry_too_large"
    CORRUPT_ENTRY = "corrupt_entry"
    CRC_MISMATCH = "crc_mismatch"
    SIZE_MISMATCH = "size_mismatch"

    # CSV files and rows (posterflow.formats.csvreader, split); EMPTY above too.
    ENCODING = "encoding"
    BINARY = "binary"
    MALFORMED = "malformed"
    LINE_TOO_LONG = "line_too_long"
    DUPLICATE_COLUMN = "duplicate_column"
    MISSING_COLUMNS = "missing_columns"
    ROW_LIMIT = "row_limit"
    EXTRA_CELLS = "extra_cells"
    MISSING_VALUES = "missing_values"
    ROW_TOO_LARGE = "row_too_large"

    # Jobs and their items (posterflow.jobs, split).
    INPUT_UNUSABLE = "input_unusable"
    CANCELLED = "cancelled"
    STALLED = "stalled"
    RETRIES_EXHAUSTED = "retries_exhausted"
    MERGE_FAILED = "merge_failed"

    @property
    def code(self) -> str:
        """The code the API answers and items record."""
        return _PUBLIC_CODES.get(self, self.value)


# Reasons split only because one code answers two statuses: they keep the code callers know.
_PUBLIC_CODES: dict[Reason, str] = {
    Reason.TEMPLATE_OUTPUT_TOO_LARGE: Reason.TEMPLATE_TOO_LARGE.value,
    Reason.RENDER_FUNCTION_FAILED: Reason.RENDER_FAILED.value,
}


class _Code:
    """``code``: the reason's public code, on an instance and on the class (``TemplateTooLarge.code``)."""

    def __get__(self, obj: PosterflowError | None, cls: type[PosterflowError]) -> str:
        return (obj if obj is not None else cls).reason.code


class PosterflowError(Exception):
    """Base of the platform's errors: a fixed :class:`Reason`, a message for people (safe to
    show to the caller) and optional ``details`` (JSON-able). Subclasses set a default
    ``reason``; a raise site may give a more precise one."""

    reason: Reason = Reason.INTERNAL
    code = _Code()

    def __init__(self, message: str = "", *, reason: Reason | str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = Reason(reason)
        self.details = details

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason.value!r}, {self.message!r})"
