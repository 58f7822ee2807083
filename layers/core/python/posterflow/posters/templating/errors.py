"""The template errors: :class:`TemplateError` and its kinds, each with its fixed reason ``code``
(what the API answers and item errors record)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from posterflow.posters.templating.limits import MAX_TEMPLATE_BYTES


class TemplateError(ValueError):
    """Base of every template problem that is the caller's fault (a 4xx, or an item error).
    ``code`` is the fixed reason code of each kind."""

    code: ClassVar[str] = "template_error"


class TemplateSyntaxError(TemplateError):
    """The template is not valid Jinja2."""

    code: ClassVar[str] = "template_syntax_error"

    def __init__(self, message: str, lineno: int | None) -> None:
        self.message = message
        self.lineno = lineno
        where = f" (line {lineno})" if lineno is not None else ""
        super().__init__(f"template syntax error{where}: {message}")


class TemplateTooLarge(TemplateError):
    """The template source is over :data:`MAX_TEMPLATE_BYTES`."""

    code: ClassVar[str] = "template_too_large"

    def __init__(self, size: int, limit: int = MAX_TEMPLATE_BYTES) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"template is {size} bytes; the limit is {limit} bytes")


class MissingPlaceholders(TemplateError):
    """Required placeholders without a value; ``names`` lists each one."""

    code: ClassVar[str] = "missing_placeholders"

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        super().__init__("missing placeholders: " + ", ".join(self.names))


class TemplateRenderError(TemplateError):
    """The template failed while rendering (sandbox violation, bad expression, output too big)."""


class TemplateOutputTooLarge(TemplateRenderError):
    """The document, a value or all values of a render went over their size budget."""

    code: ClassVar[str] = "template_too_large"


class TemplateTimeout(TemplateError):
    """Compile or render went over its time budget, or a render over its iteration budget."""

    code: ClassVar[str] = "template_timeout"


class TemplateTooDeep(TemplateError):
    """The template nests too deeply to compile, or recursed (macros, recursive loops) too deep."""

    code: ClassVar[str] = "template_too_deep"
