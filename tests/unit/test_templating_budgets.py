"""Time and size budgets of template compile and render: tiny hostile templates (constant
folding, string/sequence growth, nested loops, recursion) fail fast with a reason code, and
ordinary templates render exactly as before."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from posterflow.posters import templating
from posterflow.posters.templating import (
    MissingPlaceholders,
    TemplateError,
    TemplateRenderError,
    TemplateSyntaxError,
    TemplateTooLarge,
    render_html,
    validate_template,
)

SPEAKER = Path(__file__).resolve().parents[2] / "events" / "templates" / "speaker.html"
# Generous against a loaded 2-core machine, far below what the bombs take unbounded (minutes, GBs).
FAST_S = 3.0


def _fails(html: str, data: dict[str, object] | None = None) -> TemplateError:
    start = time.monotonic()
    with pytest.raises(TemplateError) as err:
        render_html(html, data or {})
    assert time.monotonic() - start < FAST_S, f"{html!r} took {time.monotonic() - start:.1f} s"
    return err.value


def test_reason_codes_are_class_attributes() -> None:
    assert TemplateError.code == "template_error"
    assert TemplateRenderError.code == "template_error"
    assert TemplateTooLarge.code == "template_too_large"
    assert TemplateSyntaxError.code == "template_syntax_error"
    assert MissingPlaceholders.code == "missing_placeholders"
    assert templating.TemplateTimeout.code == "template_timeout"
    assert templating.TemplateOutputTooLarge.code == "template_too_large"
    assert templating.TemplateTooDeep.code == "template_too_deep"
    assert issubclass(templating.TemplateOutputTooLarge, TemplateRenderError)


# Each of these is tiny and would take seconds to minutes and up to many GB without budgets.
GROWTH_BOMBS = [
    '{{ "a" * 10**10 }}',
    "{{ 9 ** (9 ** 9) }}",  # Jinja's ** is left-associative: 9**9**9 is (9**9)**9, small
    "{{ 2 ** (10 ** 8) }}",
    "{{ [1] * 10**9 }}",
    '{{ "a"|center(999999999) }}',
    '{{ "a".ljust(999999999) }}',
    '{{ "x".zfill(10**9) }}',
    '{{ ("\t" * 1000).expandtabs(1000000) }}',
    '{{ ("a" * 1000).replace("a", "b" * 100000) }}',
    '{{ ("a" * 1000)|replace("a", "b" * 100000) }}',
    '{{ ("a" * 100).translate({97: "x" * 100000}) }}',
    '{{ ("x" * 100000).join(range(1000)|map("string")) }}',
    '{{ range(1000)|join("x" * 100000) }}',
    '{{ "%999999999s"|format("a") }}',
    '{{ "%999999999s" % "a" }}',
    '{{ "%.999999999f" % 1 }}',
    '{{ "%*s" % (999999999, "a") }}',
    '{{ "{:>999999999}".format("a") }}',
    '{{ ("{0}" * 1000).format("y" * 100000) }}',
    '{{ "a\nb\nc"|indent(999999999) }}',
    '{{ ("a " * 1000)|wordwrap(1, wrapstring="x" * 100000) }}',
    "{{ lipsum(100000) }}",
    '{{ (1).to_bytes(10**9, "big") }}',
    "{{ range(10)|batch(10**9, 0)|list }}",
    "{{ range(10)|slice(10**9)|list }}",
    '{{ {"a": 1}|tojson(indent=10**8) }}',
    "{{ ([[1] * 100000] * 100000)|sum(start=[]) }}",
    # Doubling: each step is small, the 40th is a terabyte.
    '{% set ns = namespace(s="ab") %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}',
    '{% set ns = namespace(s="ab") %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}',
    # Shared references: 10 levels of 10 references print 10**10 strings.
    '{% set a = ["xxxxxxxxxx"] %}' + "".join(
        f"{{% set {n} = [{','.join([p] * 10)}] %}}" for p, n in zip("abcdefghij", "bcdefghijk", strict=True))
    + "{{ k }}",
    '{% set a = [["x"] * 1000000] * 1000000 %}{{ a|string|length }}',
    # Accumulating without printing: memory, not output.
    '{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + ["x" * 500000] %}{% endfor %}',
    '{% set big = "x" * 1000000 %}{% set y %}{% for i in range(1000) %}{{ big }}{% endfor %}{% endset %}{{ y|length }}',
    '{% set y %}{% for i in range(100000) %}' + "x" * 1000 + "{% endfor %}{% endset %}{{ y|length }}",
    '{% macro m() %}' + "x" * 100000 + '{% endmacro %}{% set ns = namespace(l=[]) %}'
    '{% for i in range(100000) %}{% set ns.l = ns.l + [m()] %}{% endfor %}',
    # Output over its budget.
    '{% for i in range(1000) %}{{ "x" * 10000 }}{% endfor %}',
]


@pytest.mark.parametrize("html", GROWTH_BOMBS)
def test_growth_bombs_compile_instantly_and_fail_their_size_budget(html: str) -> None:
    start = time.monotonic()
    templating._compile(html)  # compile only, without validate_template's trial render
    assert time.monotonic() - start < 1.0, "compile must not evaluate constant expressions"
    err = _fails(html)
    assert err.code == "template_too_large", err
    assert "budget" in str(err)


@pytest.mark.parametrize("html", [
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "{% for a in range(100000) %}{% for b in range(100000) %}{% if a == b %}x{% endif %}{% endfor %}{% endfor %}",
    # Exponential but shallow recursion: every call returns nothing.
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}",
    "{% for x in [1] recursive %}{% if loop.depth < 50 %}{{ loop([1, 2]) }}{% endif %}{% endfor %}",
])
def test_loops_and_calls_fail_their_time_or_iteration_budget(html: str) -> None:
    err = _fails(html)
    assert err.code == "template_timeout", err
    assert "budget" in str(err)


def test_the_render_deadline_stops_slow_iterations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templating, "RENDER_BUDGET_S", 0.3)
    start = time.monotonic()
    err = _fails("{% for a in range(100000) %}{{ range(100000)|sum }}{% endfor %}")
    assert err.code == "template_timeout" and "0.3 s" in str(err)
    assert time.monotonic() - start < 1.5


@pytest.mark.parametrize("html", [
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}",
])
def test_infinite_recursion_is_too_deep(html: str) -> None:
    err = _fails(html)
    assert err.code == "template_too_deep", err


@pytest.mark.parametrize("html", [
    "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
    "{% for a in b %}" * 2000 + "{% endfor %}" * 2000,
    "{% for a in b %}" * 30 + "{% endfor %}" * 30,  # Python: "too many statically nested blocks"
    "{% if a %}" * 120 + "{% endif %}" * 120,  # Python: "too many levels of indentation"
])
def test_too_deep_templates_are_refused_at_upload(html: str) -> None:
    start = time.monotonic()
    with pytest.raises(templating.TemplateTooDeep) as err:
        validate_template(html)
    assert err.value.code == "template_too_deep"
    assert time.monotonic() - start < FAST_S


def test_huge_integer_literal_is_a_syntax_error() -> None:
    with pytest.raises(TemplateSyntaxError):
        validate_template("{{ 1" + "0" * 5000 + " }}")


@pytest.mark.parametrize("html", [
    '{{ "a" * 10**10 }}',
    "{{ 9 ** (9 ** 9) }}",
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
])
def test_upload_validation_refuses_budget_failures_quickly(html: str) -> None:
    start = time.monotonic()
    with pytest.raises(TemplateError) as err:
        validate_template(html)
    assert err.value.code in ("template_too_large", "template_timeout", "template_too_deep")
    assert time.monotonic() - start < FAST_S


def test_upload_validation_keeps_data_dependent_templates() -> None:
    # With sample data this loops 5 times; only real data can make it heavy, checked at render.
    html = "{% for a in range(n|int) %}{% for b in range(n|int) %}.{% endfor %}{% endfor %}{{ x.y }}"
    validate_template(html)
    assert render_html(html, {"n": "3", "x": {"y": "!"}}) == "." * 9 + "!"
    assert _fails(html, {"n": "100000", "x": {}}).code == "template_timeout"


def test_compile_has_a_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    html = "<p>{{ a }} {% if b %}{{ c|upper }}{% endif %}</p>" * 3000
    monkeypatch.setattr(templating, "COMPILE_BUDGET_S", 0.05)
    start = time.monotonic()
    with pytest.raises(templating.TemplateTimeout) as err:
        validate_template(html)
    assert err.value.code == "template_timeout" and "compile budget" in str(err.value)
    assert time.monotonic() - start < 1.5
    with pytest.raises(templating.TemplateTimeout):
        render_html(html, {"a": "1", "b": "", "c": ""})
    monkeypatch.setattr(templating, "COMPILE_BUDGET_S", 60.0)
    assert render_html(html, {"a": "1", "b": "", "c": ""}).startswith("<p>1 </p>")


def test_a_failed_render_leaves_no_budget_behind() -> None:
    _fails("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}")
    assert render_html("{% for i in range(3) %}{{ i }}{% endfor %}", {}) == "012"


def test_speaker_template_renders_as_before() -> None:
    html = SPEAKER.read_text()
    data = {"event": "PyCon", "name": "Jane <Doe>", "title": "Engineer", "quote": "Hi & bye", "speaker_id": "42"}
    validate_template(html)
    out = render_html(html, data)
    assert "<h1>Jane &lt;Doe&gt;</h1>" in out and "Hi &amp; bye" in out and "#42" in out


@pytest.mark.parametrize(("html", "expected"), [
    ('{{ "ab" * 3 }}|{{ 2 ** 10 }}|{{ [1, 2] + [3] }}|{{ "a" ~ 1 ~ "b" }}|{{ 7 % 3 }}', "ababab|1024|[1, 2, 3]|a1b|1"),
    ('{{ "%05d|%-4s|%.2f" % (42, "x", 3.14159) }}', "00042|x   |3.14"),
    ('{{ "{:>5}|{:03d}".format("a", 7) }}|{{ "%s-%s"|format("p", "q") }}', "    a|007|p-q"),
    ('{{ "a"|center(5) }}|{{ "ab".ljust(4, ".") }}|{{ "7".zfill(3) }}|{{ "a-b"|replace("-", "+") }}',
     "  a  |ab..|007|a+b"),
    ('{{ ["x", "y"]|join(", ") }}|{{ ", ".join(["x", "y"]) }}|{{ "a\nb"|indent(2, true) }}', "x, y|x, y|  a\n  b"),
    ("{% macro card(n) %}<b>{{ n }}</b>{% endmacro %}{% for t in ['a', 'b'] %}{{ card(t) }}{% endfor %}",
     "<b>a</b><b>b</b>"),
    ("{% for t in ['a', 'b', 'c'] %}{{ loop.index }}/{{ loop.length }}{{ '.' if not loop.last }}"
     "{{ loop.cycle('x', 'y') }}{% else %}none{% endfor %}", "1/3.x2/3.y3/3x"),
    ("{% for x in [] %}y{% else %}none{% endfor %}", "none"),
    ("{% for k, v in {'a': 1}|dictsort %}{{ k }}={{ v }}{% endfor %}", "a=1"),
    ("{% for x in [1, 2, 3] if x > 1 %}{{ x }}{% endfor %}", "23"),
    ("{% set y %}<i>{{ 'a' }}</i>{% endset %}{{ y }}|{% filter upper %}b{{ 'c' }}{% endfilter %}", "<i>a</i>|BC"),
    ("{% for n in tree recursive %}[{{ n.name }}{{ loop(n.kids) }}]{% endfor %}", "[r[a][b[c]]]"),
    ("{{ lipsum(1, false, 3, 4)|wordcount }}|{{ range(3)|map('string')|join }}|{{ (1).to_bytes(2, 'big')|length }}",
     "3|012|2"),
    ("{{ '<x>' ~ '&' }}|{{ (['<a>'] * 2)|join }}", "&lt;x&gt;&amp;|&lt;a&gt;&lt;a&gt;"),
])
def test_ordinary_templates_render_as_before(html: str, expected: str) -> None:
    tree = [{"name": "r", "kids": [{"name": "a", "kids": []}, {"name": "b", "kids": [{"name": "c", "kids": []}]}]}]
    assert render_html(html, {"tree": tree}) == expected


def test_large_data_values_pass_through() -> None:
    # Data (up to the 4 MiB request body) may exceed the single-value budget: only growth counts.
    big = "A" * 3_000_000
    out = render_html("<img src='{{ img }}'>{{ img|default('')|length }}{{ img|trim|length }}{{ (img ~ '')|length }}",
                      {"img": big})
    assert out == f"<img src='{big}'>" + "3000000" * 3


def test_loops_over_data_within_budget() -> None:
    rows = [{"n": str(i)} for i in range(20_000)]
    out = render_html("{% for r in rows %}{{ r.n }},{% endfor %}", {"rows": rows})
    assert out.count(",") == 20_000
