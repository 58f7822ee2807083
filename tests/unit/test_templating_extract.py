"""extract_placeholders: names from the Jinja AST with type, sample and required."""

from __future__ import annotations

import pytest

from posterflow.posters.templating import (
    Placeholder,
    TemplateError,
    extract_placeholders,
    merge_placeholders,
    render_html,
    sample_data,
)


def test_names_types_and_required_flags() -> None:
    html = """<h1>{{ consumer_name }}</h1><p>{{consumer_message}}</p>
    <img src="{{ profile_image }}"><a href="{{ website }}">{{ rating|default('5') }}</a>
    {% if subtitle %}<h2>{{ subtitle }}</h2>{% endif %}{% for tag in tags %}{{ tag }}{% endfor %}
    {% set local = 'x' %}{{ local }}"""
    found = {p.name: p for p in extract_placeholders(html)}
    assert set(found) == {"consumer_name", "consumer_message", "profile_image", "website", "rating", "subtitle", "tags"}
    assert found["consumer_name"] == Placeholder(name="consumer_name", sample="Jane Doe", type="text", required=True)
    assert found["profile_image"].type == "image"
    assert found["profile_image"].sample.startswith("data:image/png;base64,")
    assert found["website"].type == "url"
    assert found["rating"].type == "number"
    assert found["rating"].required is False
    assert found["subtitle"].required is False
    assert found["tags"].type == "list"
    assert found["consumer_message"].required is True


def test_samples_render_the_template() -> None:
    html = "<p>{{ name }} {{ email }} {% for t in items %}{{ t }}{% endfor %}</p>"
    out = render_html(html, sample_data(extract_placeholders(html)))
    assert "Jane Doe" in out
    assert "jane@example.com" in out


def test_no_placeholders() -> None:
    assert extract_placeholders("<p>static</p>") == []


def test_metadata_overrides_extracted_defaults() -> None:
    found = extract_placeholders("{{ consumer_name }} {{ rating }}")
    merged = {p.name: p for p in merge_placeholders(found, [{"name": "Rating", "sample": "4.5", "required": False}])}
    assert merged["rating"] == Placeholder(name="rating", sample="4.5", type="number", required=False)
    assert merged["consumer_name"].sample == "Jane Doe"
    with pytest.raises(TemplateError, match="does not use: nope"):
        merge_placeholders(found, [{"name": "nope", "sample": "x"}])
