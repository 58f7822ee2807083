"""The entry points that render: :func:`validate_template` (compile, then a trial render with
sample data) and :func:`render_html`, which fills a template under the render budget."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jinja2
from jinja2.sandbox import SecurityError

# The package, not .limits: the render budget is read from it at each render, so that
# setting ``templating.RENDER_BUDGET_S`` takes effect.
from posterflow.posters import templating as _package
from posterflow.posters.templating.budgets import _RENDER, _Budget
from posterflow.posters.templating.compiler import _compile
from posterflow.posters.templating.errors import (
    MissingPlaceholders,
    TemplateError,
    TemplateOutputTooLarge,
    TemplateRenderError,
    TemplateTimeout,
    TemplateTooDeep,
)
from posterflow.posters.templating.limits import MAX_OUTPUT_CHARS
from posterflow.posters.templating.placeholders import extract_placeholders, normalize_key, sample_data, select_data


def validate_template(html: str) -> None:
    """Raise :class:`TemplateTooLarge` or :class:`TemplateSyntaxError` (with ``lineno``), or a
    budget error (:class:`TemplateTimeout`, :class:`TemplateTooDeep`, :class:`TemplateOutputTooLarge`)
    for a template that overruns its budgets at compile or when rendered with sample data."""
    _compile(html)
    _trial_render(html)


def _trial_render(html: str) -> None:
    """Render with sample data: a template that blows a budget on its own (constant bombs,
    loops over ``range``, endless recursion) is refused at upload, not in every render. Other
    failures depend on the data and are left to the renders."""
    try:
        render_html(html, sample_data(extract_placeholders(html)))
    except (TemplateTimeout, TemplateTooDeep, TemplateOutputTooLarge):
        raise
    except TemplateError:
        pass


def render_html(html: str, data: Mapping[str, Any], columns: Sequence[str] | None = None) -> str:
    """Fill the template; every value is HTML-escaped.

    Raises :class:`MissingPlaceholders` naming every required placeholder without a value,
    :class:`TemplateSyntaxError`, :class:`TemplateTooLarge`, :class:`TemplateRenderError`, or
    a budget error: :class:`TemplateTimeout`, :class:`TemplateOutputTooLarge`, :class:`TemplateTooDeep`.
    """
    template, names, optional, _ = _compile(html)
    available = select_data(data, columns)
    missing = sorted(n for n in names - optional if normalize_key(n) not in available)
    if missing:
        raise MissingPlaceholders(missing)
    # Hand the template its own spelling of each name so {{Username}} and {{username}} both resolve.
    context = {n: available[normalize_key(n)] for n in names if normalize_key(n) in available}
    token = _RENDER.set(_Budget(_package.RENDER_BUDGET_S))
    try:
        return _generate(template, context)
    except RecursionError as exc:
        raise TemplateTooDeep("template recursed too deeply (a macro or recursive loop calling itself)") from exc
    finally:
        _RENDER.reset(token)


def _generate(template: jinja2.Template, context: dict[str, Any]) -> str:
    out: list[str] = []
    size = 0
    try:
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateOutputTooLarge(
                    f"rendered document exceeds {MAX_OUTPUT_CHARS} characters, its output budget")
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
