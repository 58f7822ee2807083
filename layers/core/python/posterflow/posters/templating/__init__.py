"""HTML poster templates: validation, placeholder extraction and sandboxed rendering.

Being split into modules; everything is importable from here, as before.
"""

from posterflow.posters.templating.budgets import (
    COMPILE_BUDGET_S,
    MAX_TEMPLATE_BYTES,
    RENDER_BUDGET_S,
    MissingPlaceholders,
    Placeholder,
    TemplateError,
    TemplateOutputTooLarge,
    TemplateRenderError,
    TemplateSyntaxError,
    TemplateTimeout,
    TemplateTooDeep,
    TemplateTooLarge,
    _compile,
    check_size,
    extract_placeholders,
    merge_placeholders,
    normalize_key,
    render_html,
    sample_data,
    validate_template,
)

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
