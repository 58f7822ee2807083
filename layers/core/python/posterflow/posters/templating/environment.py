"""The sandboxed Jinja environment templates compile and render in: the lexer and code generator
that watch the compile clock, and the immutable sandbox with budgets on operators, ``~``, calls,
``str.format`` and filters. ``_ENV`` is the one instance."""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.lexer import Lexer
from jinja2.runtime import LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from markupsafe import Markup

from posterflow.posters.templating import budgets, helpers
from posterflow.posters.templating.budgets import (
    _COMPILING,
    _SIZED,
    _account,
    _BoundedEscapeFormatter,
    _BoundedFormatter,
    _check_growth,
    _check_percent,
    _check_power,
    _check_printable,
    _check_product,
    _largest,
    _text_size,
)
from posterflow.posters.templating.filters import (
    _budgeted_filter,
    _counted,
    _finalize,
    _iterate,
    _lipsum,
    _method_estimate,
)
from posterflow.posters.templating.limits import MAX_INT_BITS, MAX_PRODUCED_CHARS, MAX_VALUE_CHARS

_RENDER = budgets._RENDER
"""The render in progress (see :mod:`.budgets`), bound by assignment, not imported: CPython 3.11
compiles a method call on an imported name (``_RENDER.get()``) without LOAD_METHOD, making a
bound method each time, and this is read on the hot path (every filter, call, print, loop)."""

# --- The environment -----------------------------------------------------------------------


class _BudgetLexer(Lexer):
    def tokeniter(self, source: str, name: str | None, filename: str | None = None,
                  state: str | None = None) -> Iterator[tuple[int, str, str]]:
        clock = _COMPILING.get()
        for count, token in enumerate(super().tokeniter(source, name, filename, state)):
            if clock is not None and count % 512 == 0:
                clock.check()
            yield token


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator that watches the compile clock, routes ``~`` through the budget
    and collects the undeclared names (what ``meta.find_undeclared_variables`` does with a
    second full code generation)."""

    def __init__(self, environment: jinja2.Environment) -> None:
        super().__init__(environment, None, "<template>", optimized=False)
        self.undeclared: set[str] = set()
        self._visits = 0
        self._clock = _COMPILING.get()

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        self._visits += 1
        if self._clock is not None and self._visits % 512 == 0:
            self._clock.check()
        return super().visit(node, *args, **kwargs)

    def enter_frame(self, frame: Frame) -> None:
        super().enter_frame(frame)
        for action, param in frame.symbols.loads.values():
            if action == "resolve" and param not in self.environment.globals:
                self.undeclared.add(param)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # As Jinja's, with the join and its operands handed to the environment to check first.
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        else:
            join = "markup_join" if frame.eval_ctx.autoescape else "str_join"
        self.write(f"environment.checked_concat({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _BudgetedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with time and size budgets on everything that can grow a value
    or repeat work: the growing operators, calls, filters, ``~``, loops and printing."""

    # Intercepted operators are also never folded into constants at compile time.
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self) -> None:
        super().__init__(autoescape=True, undefined=jinja2.Undefined, finalize=_finalize)
        self._budget_lexer = _BudgetLexer(self)
        self.globals["lipsum"] = _lipsum
        self.globals["qr"] = helpers.qr
        self.filters[_ITERATE] = _iterate
        for name, func in list(self.filters.items()):
            if name != _ITERATE:
                self.filters[name] = _budgeted_filter(name, func)

    @property
    def lexer(self) -> Lexer:
        return self._budget_lexer

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        if type(left) is int and type(right) is int and operator != "**":
            # The common case (loop.index * 2), on the hot path: only * can grow an int much.
            if operator == "*" and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                _check_product(left, right)  # raises, with the message
            return _BINOPS[operator](left, right)
        if operator == "*":
            _check_product(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_percent(left, right)
        result = _BINOPS[operator](left, right)
        return _account(result, (left, right), "result of an operator") if isinstance(result, _SIZED) else result

    def checked_concat(self, join: Callable[[Iterable[Any]], str], values: tuple[Any, ...]) -> str:
        total = largest = 0
        for value in values:
            if isinstance(value, str):
                size = len(value)
            elif isinstance(value, (int, float)):
                size = 8
            else:
                size = _check_printable("operand of '~'", value)
            total += size
            if size > largest:
                largest = size
        if total > MAX_VALUE_CHARS:
            _check_growth("result of '~'", total, largest)
        budget = _RENDER.get()
        if budget is not None:
            budget.produced += total
            if budget.produced > MAX_PRODUCED_CHARS:
                budget.produce(0)  # raises, with the message
        return join(values)

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _RENDER.get()
        if budget is not None:
            budget.steps += 1
            if budget.steps >= budget.next_check:
                budget.checkpoint()
            if isinstance(__obj, LoopContext) and args:
                # loop(children) in a recursive loop: its iterations count like any other loop's.
                budget.iterations += 1
                args = (_counted(args[0], budget, 0), *args[1:])
        # SandboxedEnvironment.call, inlined: calls are on the hot path.
        if not __self.is_safe_callable(__obj):
            raise SecurityError(f"{__obj!r} is not safely callable")
        if isinstance(__obj, (Macro, LoopContext)):
            # A macro's (or recursive loop's) result is output captured as a string: counted,
            # but not "growth" of its arguments.
            result = __context.call(__obj, *args, **kwargs)
            if budget is not None and isinstance(result, str):
                budget.produce(len(result))
            return result
        owner = getattr(__obj, "__self__", None)
        printed = 0
        if isinstance(owner, (str, bytes, int)):
            name = getattr(__obj, "__name__", "")
            if name == "join" and args:
                if not isinstance(args[0], Sequence):
                    args = (list(args[0]), *args[1:])  # the estimate needs the items
                printed = _text_size(args[0])  # joining data is not growth
            expected = _method_estimate(owner, name, args, kwargs)
            if expected > MAX_VALUE_CHARS:
                _check_growth(f"result of {name}()", expected, max(printed, _largest(owner, *args, *kwargs.values())))
        result = __context.call(__obj, *args, **kwargs)
        # _account, inlined.
        size = len(result) if isinstance(result, _SIZED) else 0
        if size:
            if size > MAX_VALUE_CHARS:
                _check_growth("result of a call", size, max(printed, _largest(owner, *args, *kwargs.values())))
            if budget is not None:
                budget.produced += size
                if budget.produced > MAX_PRODUCED_CHARS:
                    budget.produce(0)  # raises, with the message
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Jinja's sandboxed ``str.format``/``format_map`` (3.1.5+), with the bounded formatter."""
        if not isinstance(value, (types.MethodType, types.BuiltinMethodType)) or value.__name__ not in (
            "format", "format_map"
        ):
            return None
        f_self: Any = value.__self__
        if not isinstance(f_self, str):
            return None
        str_type: type[str] = type(f_self)
        is_format_map = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
                kwargs = args[0]
                args = ()
            limit = max(len(f_self), _largest(*args, *kwargs.values())) + MAX_VALUE_CHARS
            formatter: _BoundedFormatter
            if isinstance(f_self, Markup):
                formatter = _BoundedEscapeFormatter(self, limit, escape=f_self.escape)
            else:
                formatter = _BoundedFormatter(self, limit)
            return str_type(formatter.vformat(f_self, args, kwargs))

        # What call() reads to count the format string among the inputs.
        wrapper.__self__ = f_self  # type: ignore[attr-defined]
        return functools.update_wrapper(wrapper, value)


_BINOPS = ImmutableSandboxedEnvironment.default_binop_table
"""The operators call_binop performs once checked (the sandbox's own table; nothing changes it)."""

_ITERATE = "posterflow:iterate"
"""Filter name of the loop counter; not a valid name in templates, so only _instrument uses it."""

_ENV = _BudgetedEnvironment()
# ``|safe`` would let a value through unescaped; without the filter, using it is a syntax
# error with a line number. ``{% autoescape false %}`` is refused in _parse for the same reason.
del _ENV.filters["safe"]
