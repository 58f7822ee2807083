"""HTML poster templates: validation, placeholder extraction and sandboxed rendering.

Templates are untrusted customer HTML with Jinja2 ``{{placeholders}}``. They are compiled in
Jinja2's immutable sandbox with autoescaping always on, so neither the template (no attribute
access to Python internals) nor the data (every value is HTML-escaped) can inject markup,
script or code.

Data follows seed 000's ``replace_placeholders`` semantics: an explicit ``columns`` subset of
the row, or all its keys; keys are matched case- and whitespace-insensitively, so a CSV header
``Username`` or `` user name `` fills ``{{username}}`` / ``{{user_name}}``.

Everything callers use is importable from here (``from posterflow.posters import templating``).
The modules, in the order they build on each other:

- :mod:`.limits`: the largest template and the time, iteration and size budgets;
- :mod:`.errors`: :class:`TemplateError` and its kinds, each with its reason ``code``;
- :mod:`.budgets`: accounting of one compile or render, value sizes, the growing operators;
- :mod:`.filters`: bounded filters and string methods, the loop counter, printing;
- :mod:`.environment`: the budgeted sandbox, its lexer and code generator;
- :mod:`.compiler`: parse, the loop-rewriting AST pass, the cached compile;
- :mod:`.placeholders`: the :class:`Placeholder` model, extraction, samples, data matching;
- :mod:`.render`: :func:`validate_template` and :func:`render_html`.
"""

from posterflow.posters.templating.compiler import _compile, check_size
from posterflow.posters.templating.errors import (
    MissingPlaceholders,
    TemplateError,
    TemplateOutputTooLarge,
    TemplateRenderError,
    TemplateSyntaxError,
    TemplateTimeout,
    TemplateTooDeep,
    TemplateTooLarge,
)
from posterflow.posters.templating.limits import COMPILE_BUDGET_S, MAX_TEMPLATE_BYTES, RENDER_BUDGET_S
from posterflow.posters.templating.placeholders import (
    Placeholder,
    extract_placeholders,
    merge_placeholders,
    normalize_key,
    sample_data,
)
from posterflow.posters.templating.render import render_html, validate_template

__all__ = [
    "COMPILE_BUDGET_S",
    "MAX_TEMPLATE_BYTES",
    "RENDER_BUDGET_S",
    "MissingPlaceholders",
    "Placeholder",
    "TemplateError",
    "TemplateOutputTooLarge",
    "TemplateRenderError",
    "TemplateSyntaxError",
    "TemplateTimeout",
    "TemplateTooDeep",
    "TemplateTooLarge",
    "_compile",
    "check_size",
    "extract_placeholders",
    "merge_placeholders",
    "normalize_key",
    "render_html",
    "sample_data",
    "validate_template",
]
