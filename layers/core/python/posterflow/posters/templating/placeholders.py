"""Placeholders: the :class:`Placeholder` model, extraction with inferred types and samples,
caller metadata over it, preview data, and matching data to placeholder names (case- and
whitespace-insensitive keys; see :func:`normalize_key` and :func:`select_data`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from posterflow.posters.templating.compiler import _compile
from posterflow.posters.templating.errors import TemplateError

PlaceholderType = Literal["text", "number", "url", "image", "email", "date", "list"]


class Placeholder(BaseModel):
    """A variable the template reads, as stored with the template version."""

    model_config = ConfigDict(frozen=True)

    name: str
    sample: str
    type: PlaceholderType = "text"
    required: bool = True


def normalize_key(key: str) -> str:
    """``' User  Name '`` -> ``'user_name'``: how data keys and placeholder names are matched."""
    return re.sub(r"[\s\-]+", "_", key.strip()).lower()


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
    compiled = _compile(html)
    names, optional, loops = compiled.names, compiled.optional, compiled.loops
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
    _, names, optional, _ = _compile(html)
    available = select_data(data, columns)
    return sorted(n for n in names - optional if normalize_key(n) not in available)
