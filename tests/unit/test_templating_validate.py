"""validate_template: syntax errors carry the line; the 2 MB limit."""

from __future__ import annotations

import pytest

from posterflow.posters.templating import (
    MAX_TEMPLATE_BYTES,
    TemplateSyntaxError,
    TemplateTooLarge,
    extract_placeholders,
    render_html,
    validate_template,
)


def test_valid_template_passes() -> None:
    validate_template("<p>{{ name }}</p>{% if x %}{{ x }}{% endif %}")


@pytest.mark.parametrize(
    ("html", "line"),
    [
        ("<p>\n\n{{ name }\n</p>", 3),
        # An unclosed block is reported where it opens.
        ("\n<p>{% if x %}\nnever closed\n", 2),
        ("line1\nline2\n{% for %}", 3),
    ],
)
def test_syntax_error_reports_the_line(html: str, line: int) -> None:
    with pytest.raises(TemplateSyntaxError) as err:
        validate_template(html)
    assert err.value.lineno == line
    assert f"line {line}" in str(err.value)
    with pytest.raises(TemplateSyntaxError):
        render_html(html, {})
    with pytest.raises(TemplateSyntaxError):
        extract_placeholders(html)


def test_size_limit_is_two_megabytes_of_utf8() -> None:
    assert MAX_TEMPLATE_BYTES == 2 * 1024 * 1024
    validate_template("a" * MAX_TEMPLATE_BYTES)
    with pytest.raises(TemplateTooLarge) as err:
        validate_template("a" * (MAX_TEMPLATE_BYTES + 1))
    assert err.value.size == MAX_TEMPLATE_BYTES + 1
    # Multi-byte characters count by their encoded size.
    with pytest.raises(TemplateTooLarge):
        validate_template("é" * (MAX_TEMPLATE_BYTES // 2 + 1))
