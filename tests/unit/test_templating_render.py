"""render_html: seed 000 placeholder semantics, escaping and the sandbox."""

from __future__ import annotations

import pytest

from posterflow.posters.templating import (
    MissingPlaceholders,
    TemplateRenderError,
    TemplateSyntaxError,
    render_html,
    validate_template,
)


def test_both_brace_spacings_fill() -> None:
    assert render_html("<p>{{name}}|{{ name }}</p>", {"name": "Ada"}) == "<p>Ada|Ada</p>"


def test_values_are_escaped_so_data_cannot_inject_markup() -> None:
    out = render_html("<p>{{ bio }}</p><a title='{{ bio }}'>", {"bio": "<script>alert(1)</script>' onload='x"})
    assert "<script>" not in out
    assert "&lt;script&gt;" in out
    assert "' onload='" not in out


def test_header_case_and_whitespace_are_normalised() -> None:
    html = "{{username}} {{ first_name }}"
    assert render_html(html, {" Username ": "ada", "First Name": "Ada"}) == "ada Ada"
    assert render_html("{{ Username }}", {"username": "ada"}) == "ada"


def test_explicit_columns_limit_the_data_used() -> None:
    html = "{{ name }}-{{ title|default('none') }}"
    row = {"Name": "Ada", "Title": "Countess"}
    assert render_html(html, row) == "Ada-Countess"
    assert render_html(html, row, columns=["name"]) == "Ada-none"


def test_missing_placeholders_are_each_named() -> None:
    with pytest.raises(MissingPlaceholders) as err:
        render_html("{{ a }} {{ b }} {{ c|default('') }}", {"A": "1", "x": "2"}, columns=None)
    assert err.value.names == ["b"]
    with pytest.raises(MissingPlaceholders) as err:
        render_html("{{ a }} {{ b }}", {"a": "1", "b": "2"}, columns=["x"])
    assert err.value.names == ["a", "b"]
    assert "a, b" in str(err.value)


def test_none_counts_as_missing_but_empty_string_is_a_value() -> None:
    with pytest.raises(MissingPlaceholders):
        render_html("{{ a }}", {"a": None})
    assert render_html("[{{ a }}]", {"a": ""}) == "[]"


def test_sandbox_blocks_python_internals() -> None:
    with pytest.raises(TemplateRenderError):
        render_html("{{ x.__class__.__mro__[1].__subclasses__() }}", {"x": "s"})


def test_loops_over_list_values() -> None:
    assert render_html("{% for t in tags %}<i>{{ t }}</i>{% endfor %}", {"tags": ["a", "<b>"]}) == (
        "<i>a</i><i>&lt;b&gt;</i>"
    )


@pytest.mark.parametrize(
    ("html", "line"),
    [
        ("<p>\n{{ bio|safe }}</p>", 2),
        ("<p>\n\n{% autoescape false %}{{ bio }}{% endautoescape %}</p>", 3),
        ("{% filter safe %}{{ bio }}{% endfilter %}", 1),
    ],
)
def test_templates_cannot_switch_escaping_off(html: str, line: int) -> None:
    with pytest.raises(TemplateSyntaxError) as err:
        validate_template(html)
    assert err.value.lineno == line
