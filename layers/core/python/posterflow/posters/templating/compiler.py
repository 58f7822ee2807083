"""Compiling a template: parse (refusing ``autoescape`` off), the AST pass that routes every loop
through the iteration budget, code generation and Python's compile under the compile clock,
cached; and the names the template reads, the optional ones and those it loops over."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

import jinja2
from jinja2 import nodes

# The package, not .limits: the compile budget is read from it at each compile, so that
# setting ``templating.COMPILE_BUDGET_S`` takes effect.
from posterflow.posters import templating as _package
from posterflow.posters.templating.budgets import _COMPILING, _Deadline
from posterflow.posters.templating.environment import _ENV, _ITERATE, _CodeGenerator
from posterflow.posters.templating.errors import TemplateError, TemplateSyntaxError, TemplateTooDeep, TemplateTooLarge
from posterflow.posters.templating.limits import MAX_TEMPLATE_BYTES


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
    except TemplateError:  # the compile clock ran out while lexing
        raise
    except ValueError as exc:  # an integer literal longer than Python converts (4,300 digits)
        raise TemplateSyntaxError(str(exc), None) from exc
    for node in tree.find_all((nodes.EvalContextModifier, nodes.ScopedEvalContextModifier)):
        if any(kw.key == "autoescape" for kw in node.options):
            raise TemplateSyntaxError("autoescape cannot be turned off: values are always escaped", node.lineno)
    return tree


def _static_chars(body: Sequence[nodes.Node]) -> int:
    """Literal text one pass of ``body`` writes, not counting nested loops (they count their
    own) nor macro and call-block bodies (counted when called)."""
    total = 0
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, nodes.TemplateData):
            total += len(node.data)
        elif not isinstance(node, (nodes.For, nodes.Macro, nodes.CallBlock)):
            stack.extend(node.iter_child_nodes())
    return total


def _instrument(tree: nodes.Template) -> None:
    """Make every ``{% for %}`` loop over ``iterable|posterflow:iterate(text)``, which counts
    iterations against the budget and checks the clock; ``text`` is the literal text of one
    pass, so loops writing into ``{% set %}`` blocks count towards the size budget."""
    for loop in list(tree.find_all(nodes.For)):
        loop.iter = nodes.Filter(loop.iter, _ITERATE, [nodes.Const(_static_chars(loop.body))], [], None, None,
                                 lineno=loop.lineno)


class _Compiled(NamedTuple):
    template: jinja2.Template
    names: frozenset[str]
    optional: frozenset[str]
    loops: frozenset[str]


@lru_cache(maxsize=64)
def _compile(html: str) -> _Compiled:
    """Compiled template, all undeclared names, the optional ones and those looped over.
    Cached because a batch renders the same template thousands of times."""
    token = _COMPILING.set(_Deadline(_package.COMPILE_BUDGET_S))
    try:
        return _build(html)
    except RecursionError as exc:
        raise TemplateTooDeep("template nests too deeply to compile") from exc
    finally:
        _COMPILING.reset(token)


def _build(html: str) -> _Compiled:
    tree = _parse(html)
    optional, loops = _optional_names(tree), _loop_names(tree)
    _instrument(tree)
    generator = _CodeGenerator(_ENV)
    try:
        generator.visit(tree)
    except jinja2.TemplateSyntaxError as exc:  # e.g. an unknown filter
        raise TemplateSyntaxError(exc.message or str(exc), exc.lineno) from exc
    try:
        code = compile(generator.stream.getvalue(), "<template>", "exec")  # type: ignore[attr-defined]
    except (SyntaxError, MemoryError) as exc:  # Python's own limits: 20 nested loops, 100 indents
        raise TemplateTooDeep(f"template nests too deeply to compile: {exc}") from exc
    template = _ENV.template_class.from_code(_ENV, code, _ENV.make_globals(None))
    names = frozenset(generator.undeclared)
    return _Compiled(template, names, frozenset(optional) & names, frozenset(loops))


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
