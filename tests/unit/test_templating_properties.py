"""Properties of template filling: whatever the data (any JSON value, markup, Jinja syntax,
quotes), the rendered document keeps the template's structure, every value comes out as
text (escaped, never markup, never evaluated) and no script element can appear."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from posterflow.posters.templating import render_html

TEMPLATE = "<div class='card' title='{{ title }}'><p>{{ body }}</p><span data-x=\"{{ title }}\">{{ n }}</span></div>"
ATTACKS = st.sampled_from([
    "<script>alert(1)</script>", "</p><script>x()</script>", "'\"><img src=x onerror=alert(1)>",
    "{{ 7*7 }}", "{{ ''.__class__.__mro__ }}", "{% for x in range(10**9) %}{% endfor %}",
    "<!--", "]]>", "&lt;script&gt;", "javascript:alert(1)", "\" onmouseover=\"x", "<svg/onload=1>",
])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | ATTACKS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
).filter(lambda v: v is not None)  # a None value means "no value": the placeholder is missing


class _Doc(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: dict[str, str] = {}
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        where = self._open[-1] if self._open else ""
        self.text[where] = self.text.get(where, "") + data


@settings(max_examples=400, deadline=None)
@given(title=json_values, body=json_values, n=json_values)
def test_values_stay_text(title: Any, body: Any, n: Any) -> None:
    html = render_html(TEMPLATE, {"title": title, "body": body, "n": n})
    doc = _Doc()
    doc.feed(html)
    doc.close()
    # The structure is the template's, whatever the values were: no element was injected.
    assert [tag for tag, _ in doc.tags] == ["div", "p", "span"]
    (_, div), (_, p), (_, span) = doc.tags
    assert p == {}
    # Values arrive exactly as their text: escaped on the way in, unescaped by the parser.
    assert div == {"class": "card", "title": str(title)}
    assert span == {"data-x": str(title)}
    assert doc.text.get("p", "") == str(body)
    assert doc.text.get("span", "") == str(n)
    assert "<script" not in html.lower()


@settings(max_examples=200, deadline=None)
@given(value=st.text())
def test_raw_markup_characters_never_pass_through(value: str) -> None:
    html = render_html("<p>{{ v }}</p>", {"v": value})
    inner = html[len("<p>"):-len("</p>")]
    assert not set("<>\"'") & set(inner)
    assert inner.replace("&amp;", "").count("&") == sum(inner.count(e) for e in ("&lt;", "&gt;", "&#34;", "&#39;"))
