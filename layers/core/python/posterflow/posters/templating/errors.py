"""The template errors: :class:`TemplateError` and its kinds, each with its fixed
:class:`~posterflow.errors.Reason` (what the API answers and item errors record)."""

from __future__ import annotations

from collections.abc import Sequence

from posterflow.errors import PosterflowError, Reason
from posterflow.posters.templating.limits import MAX_TEMPLATE_BYTES


class TemplateError(PosterflowError, ValueError):
    """Base of every template problem that is the caller's fault (a 4xx, or an item error).
    ``reason`` is the fixed reason of each kind."""

    reason = Reason.TEMPLATE_ERROR


class TemplateSyntaxError(TemplateError):
    """The template is not valid Jinja2."""

    reason = Reason.TEMPLATE_SYNTAX_ERROR

    def __init__(self, message: str, lineno: int | None) -> None:
        self.description = message
        self.lineno = lineno
        where = f" (line {lineno})" if lineno is not None else ""
        super().__init__(f"template syntax error{where}: {message}", details={"line": lineno})


class TemplateTooLarge(TemplateError):
    """The template source is over :data:`MAX_TEMPLATE_BYTES`."""

    reason = Reason.TEMPLATE_TOO_LARGE

    def __init__(self, size: int, limit: int = MAX_TEMPLATE_BYTES) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"template is {size} bytes; the limit is {limit} bytes")


class MissingPlaceholders(TemplateError):
    """Required placeholders without a value; ``names`` lists each one."""

    reason = Reason.MISSING_PLACEHOLDERS

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        super().__init__("missing placeholders: " + ", ".join(self.names), details={"missing": self.names})


class TemplateRenderError(TemplateError):
    """The template failed while rendering (sandbox violation, bad expression, output too big)."""


class TemplateOutputTooLarge(TemplateRenderError):
    """The document, a value or all values of a render went over their size budget.
    Its code is ``template_too_large`` as the source's, but it is bad data (422), not a too-big upload (413)."""

    reason = Reason.TEMPLATE_OUTPUT_TOO_LARGE


class TemplateTimeout(TemplateError):
    """Compile or render went over its time budget, or a render over its iteration budget."""

    reason = Reason.TEMPLATE_TIMEOUT


class TemplateTooDeep(TemplateError):
    """The template nests too deeply to compile, or recursed (macros, recursive loops) too deep."""

    reason = Reason.TEMPLATE_TOO_DEEP
