"""The formats package's errors (CSV and ZIP readers), each a
:class:`~posterflow.errors.PosterflowError` with its reason."""

from __future__ import annotations

from posterflow.errors import PosterflowError, Reason


class CsvError(PosterflowError, ValueError):
    """The input cannot be read as CSV; the message is meant for the person who uploaded it,
    ``reason`` says which way it failed."""

    reason = Reason.MALFORMED

    def __init__(self, message: str, *, reason: Reason, line: int | None = None, offset: int | None = None) -> None:
        where = f" (line {line})" if line is not None else ""
        super().__init__(message + where, reason=reason, details={"line": line} if line is not None else None)
        self.line = line
        self.offset = offset


class CsvRowLimitExceeded(CsvError):
    reason = Reason.ROW_LIMIT


class ZipError(PosterflowError):
    """Base of the ZIP reader's errors: ``reason`` is a stable code, ``message`` is for people."""

    reason = Reason.CORRUPT

    def __init__(self, reason: Reason | str, message: str) -> None:
        super().__init__(message, reason=reason)


class BadZip(ZipError):
    """The archive as a whole cannot be used (not a ZIP, corrupt, spanned, changed while read).
    The job fails with this reason."""


class ZipBomb(BadZip):
    """An archive-level limit (entry count, total or overall ratio) is exceeded. Raised from
    declared sizes, before anything is inflated."""


class BadEntry(ZipError):
    """One entry cannot be read (encrypted, unsupported method, over a limit, corrupt, CRC).
    That item fails with this reason; the rest of the archive goes on."""

    reason = Reason.CORRUPT_ENTRY
