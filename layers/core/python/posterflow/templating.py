"""HTML poster templates: validation, placeholder extraction and sandboxed rendering.

Templates are untrusted customer HTML with Jinja2 ``{{placeholders}}``. They are compiled in
Jinja2's immutable sandbox with autoescaping always on, so neither the template (no attribute
access to Python internals) nor the data (every value is HTML-escaped) can inject markup,
script or code.

Data follows seed 000's ``replace_placeholders`` semantics: an explicit ``columns`` subset of
the row, or all its keys; keys are matched case- and whitespace-insensitively, so a CSV header
``Username`` or `` user name `` fills ``{{username}}`` / ``{{user_name}}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Literal

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from pydantic import BaseModel, ConfigDict

MAX_TEMPLATE_BYTES = 2 * 1024 * 1024
"""Largest template source accepted (UTF-8 bytes); the API answers 413 above it."""

MAX_OUTPUT_CHARS = 20 * 1024 * 1024
"""Largest rendered document; stops loops from turning a small template into a huge page."""

PlaceholderType = Literal["text", "number", "url", "image", "email", "date", "list"]


class Placeholder(BaseModel):
    """A variable the template reads, as stored with the template version."""

    model_config = ConfigDict(frozen=True)

    name: str
    sample: str
    type: PlaceholderType = "text"
    required: bool = True


class TemplateError(ValueError):
    """Base of every template problem that is the caller's fault (a 4xx, or an item error)."""


class TemplateSyntaxError(TemplateError):
    """The template is not valid Jinja2."""

    def __init__(self, message: str, lineno: int | None) -> None:
        self.message = message
        self.lineno = lineno
        where = f" (line {lineno})" if lineno is not None else ""
        super().__init__(f"template syntax error{where}: {message}")


class TemplateTooLarge(TemplateError):
    def __init__(self, size: int, limit: int = MAX_TEMPLATE_BYTES) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"template is {size} bytes; the limit is {limit} bytes")


class MissingPlaceholders(TemplateError):
    """Required placeholders without a value; ``names`` lists each one."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        super().__init__("missing placeholders: " + ", ".join(self.names))


class TemplateRenderError(TemplateError):
    """The template failed while rendering (sandbox violation, bad expression, output too big)."""


def normalize_key(key: str) -> str:
    """``' User  Name '`` -> ``'user_name'``: how data keys and placeholder names are matched."""
    return re.sub(r"[\s\-]+", "_", key.strip()).lower()


_ENV = ImmutableSandboxedEnvironment(autoescape=True, undefined=jinja2.Undefined)
# ``|safe`` would let a value through unescaped; without the filter, using it is a syntax
# error with a line number. ``{% autoescape false %}`` is refused in _parse for the same reason.
del _ENV.filters["safe"]


def check_size(html: str) -> None:
    size = len(html.encode("utf-8"))
    if size > MAX_TEMPLATE_BYTES:
        raise TemplateTooLarge(size)


def _parse(html: str) -> nodes.Template:
    check_size(html)
    try:
        tree = _ENV.parse(html)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSyntaxError(exc.message or str(exc), exc.lineno) from exc
    for node in tree.find_all((nodes.EvalContextModifier, nodes.ScopedEvalContextModifier)):
        if any(kw.key == "autoescape" for kw in node.options):
            raise TemplateSyntaxError("autoescape cannot be turned off: values are always escaped", node.lineno)
    return tree


def validate_template(html: str) -> None:
    """Raise :class:`TemplateTooLarge` or :class:`TemplateSyntaxError` (with ``lineno``)."""
    _compile(html)


@lru_cache(maxsize=64)
def _compile(html: str) -> tuple[jinja2.Template, frozenset[str], frozenset[str]]:
    """Compiled template, all undeclared names and the optional ones. Cached because a batch
    renders the same template thousands of times."""
    tree = _parse(html)
    try:
        # find_undeclared_variables runs the code generator, which reports unknown filters.
        names = frozenset(meta.find_undeclared_variables(tree))
        template = _ENV.from_string(tree)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSyntaxError(exc.message or str(exc), exc.lineno) from exc
    optional = frozenset(_optional_names(tree)) & names
    return template, names, optional


def _optional_names(tree: nodes.Template) -> set[str]:
    """Names the template itself copes without: ``x|default(...)``, ``x is defined``, ``{% if x %}``."""
    optional: set[str] = set()
    for flt in tree.find_all(nodes.Filter):
        if flt.name in ("default", "d") and isinstance(flt.node, nodes.Name):
            optional.add(flt.node.name)
    for test in tree.find_all(nodes.Test):
        if test.name in ("defined", "undefined", "none") and isinstance(test.node, nodes.Name):
            optional.add(test.node.name)
    for cond in tree.find_all(nodes.If):
        optional.update(_names_in(cond.test))
    for expr in tree.find_all(nodes.CondExpr):
        optional.update(_names_in(expr.test))
    return optional


def _names_in(node: nodes.Node) -> set[str]:
    found = [node, *node.find_all(nodes.Name)]
    return {n.name for n in found if isinstance(n, nodes.Name)}


def _loop_names(tree: nodes.Template) -> set[str]:
    return {name for loop in tree.find_all(nodes.For) for name in _names_in(loop.iter)}


_TYPE_HINTS: tuple[tuple[str, PlaceholderType], ...] = (
    (r"(^|_)(email|mail)$", "email"),
    (r"(^|_)(image|img|photo|picture|pic|avatar|logo|icon)(_url)?$", "image"),
    (r"(^|_)(url|link|href|website)$", "url"),
    (r"(^|_)(date|day|at|time)$", "date"),
    (r"(^|_)(rating|count|number|num|amount|price|score|age|total|qty|quantity|stars)$", "number"),
)

_SAMPLES: dict[PlaceholderType, str] = {
    "email": "jane@example.com",
    # A 1x1 transparent PNG: previews render without fetching anything.
    "image": (
        "data:image/png;base64,"
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    ),
    "url": "https://example.com",
    "date": "2026-01-22",
    "number": "5",
    "list": "",
}


def infer_type(name: str) -> PlaceholderType:
    key = normalize_key(name)
    for pattern, kind in _TYPE_HINTS:
        if re.search(pattern, key):
            return kind
    return "text"


def sample_for(name: str, kind: PlaceholderType) -> str:
    if kind != "text":
        return _SAMPLES[kind]
    return "Jane Doe" if "name" in normalize_key(name) else f"Sample {name.replace('_', ' ')}"


def extract_placeholders(html: str) -> list[Placeholder]:
    """Every variable the template reads, sorted by name, with an inferred type and sample.

    Raises :class:`TemplateSyntaxError` / :class:`TemplateTooLarge` like :func:`validate_template`.
    """
    _, names, optional = _compile(html)
    loops = _loop_names(_parse(html))
    result = []
    for name in sorted(names):
        kind: PlaceholderType = "list" if name in loops else infer_type(name)
        result.append(Placeholder(name=name, sample=sample_for(name, kind), type=kind, required=name not in optional))
    return result


def merge_placeholders(
    extracted: Sequence[Placeholder], metadata: Iterable[Mapping[str, Any] | Placeholder]
) -> list[Placeholder]:
    """Caller-supplied placeholder metadata (upload's optional ``placeholders``) over the
    extracted defaults, matched by normalised name. Metadata naming a variable the template
    does not use is an error rather than silently kept."""
    by_key = {normalize_key(p.name): p for p in extracted}
    unknown: list[str] = []
    for entry in metadata:
        fields = entry.model_dump(exclude_unset=True) if isinstance(entry, Placeholder) else dict(entry)
        key = normalize_key(str(fields.get("name", "")))
        if key not in by_key:
            unknown.append(str(fields.get("name", "")))
            continue
        base = by_key[key]
        fields["name"] = base.name
        by_key[key] = Placeholder.model_validate({**base.model_dump(), **fields})
    if unknown:
        raise TemplateError("placeholder metadata for names the template does not use: " + ", ".join(unknown))
    return list(by_key.values())


def sample_data(placeholders: Iterable[Placeholder]) -> dict[str, Any]:
    """Values for a preview render."""
    return {p.name: ([] if p.type == "list" else p.sample) for p in placeholders}


def select_data(data: Mapping[str, Any], columns: Sequence[str] | None = None) -> dict[str, Any]:
    """Seed 000: the ``columns`` subset of ``data`` (all keys when None), keyed by normalised name.
    ``None`` values count as absent."""
    normalized = {normalize_key(str(k)): v for k, v in data.items() if v is not None}
    if columns is None:
        return normalized
    wanted = {normalize_key(c) for c in columns}
    return {k: v for k, v in normalized.items() if k in wanted}


def missing_placeholders(html: str, data: Mapping[str, Any], columns: Sequence[str] | None = None) -> list[str]:
    _, names, optional = _compile(html)
    available = select_data(data, columns)
    return sorted(n for n in names - optional if normalize_key(n) not in available)


def render_html(html: str, data: Mapping[str, Any], columns: Sequence[str] | None = None) -> str:
    """Fill the template; every value is HTML-escaped.

    Raises :class:`MissingPlaceholders` naming every required placeholder without a value,
    :class:`TemplateSyntaxError`, :class:`TemplateTooLarge` or :class:`TemplateRenderError`.
    """
    template, names, optional = _compile(html)
    available = select_data(data, columns)
    missing = sorted(n for n in names - optional if normalize_key(n) not in available)
    if missing:
        raise MissingPlaceholders(missing)
    # Hand the template its own spelling of each name so {{Username}} and {{username}} both resolve.
    context = {n: available[normalize_key(n)] for n in names if normalize_key(n) in available}
    out: list[str] = []
    size = 0
    try:
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateRenderError(f"rendered document exceeds {MAX_OUTPUT_CHARS} characters")
            out.append(chunk)
    except SecurityError as exc:
        raise TemplateRenderError(f"template not allowed in the sandbox: {exc}") from exc
    except TemplateError:
        raise
    except jinja2.TemplateError as exc:
        raise TemplateRenderError(f"template failed to render: {exc}") from exc
    except (TypeError, ValueError, ArithmeticError, LookupError, OverflowError) as exc:
        raise TemplateRenderError(f"template failed to render: {type(exc).__name__}: {exc}") from exc
    return "".join(out)
