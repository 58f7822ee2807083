"""HTML poster templates: validation, placeholder extraction and sandboxed rendering.

Templates are untrusted customer HTML with Jinja2 ``{{placeholders}}``. They are compiled in
Jinja2's immutable sandbox with autoescaping always on, so neither the template (no attribute
access to Python internals) nor the data (every value is HTML-escaped) can inject markup,
script or code.

Data follows seed 000's ``replace_placeholders`` semantics: an explicit ``columns`` subset of
the row, or all its keys; keys are matched case- and whitespace-insensitively, so a CSV header
``Username`` or `` user name `` fills ``{{username}}`` / ``{{user_name}}``.
"""

from __future__ import annotations

import functools
import re
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, ClassVar, Literal, NamedTuple

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.filters import make_attrgetter
from jinja2.lexer import Lexer
from jinja2.runtime import LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter, SecurityError
from jinja2.utils import Namespace, generate_lorem_ipsum, pass_context
from markupsafe import EscapeFormatter, Markup
from pydantic import BaseModel, ConfigDict

# The package, not this module: the time budgets are read from it at each compile and render,
# so that setting ``templating.COMPILE_BUDGET_S`` / ``templating.RENDER_BUDGET_S`` takes effect.
from posterflow.posters import templating as _package

MAX_TEMPLATE_BYTES = 2 * 1024 * 1024
"""Largest template source accepted (UTF-8 bytes); the API answers 413 above it."""

# Budgets. A template is a program written by a customer: without them a 17-byte template can
# take minutes and gigabytes, at upload (constant folding) or in every render worker.
COMPILE_BUDGET_S = 2.0
"""Wall-clock time to compile one template. Lexing, parsing and code generation get the first
half and are checked as they go; Python's compile, which cannot be interrupted, costs about as
much as code generation and gets the rest."""

RENDER_BUDGET_S = 2.0
"""Wall-clock time of one render (``render_html``), checked every few loop iterations and calls."""

MAX_ITERATIONS = 1_000_000
"""Loop iterations one render may run, all loops together: nested empty loops print nothing
and so never reach the output budget."""

MAX_OUTPUT_CHARS = 5 * 1024 * 1024
"""Largest rendered document; also the most one value may print as (``str()`` of a list)."""

MAX_VALUE_CHARS = 1024 * 1024
"""How much one operation (``*``, ``+``, ``%``, ``~``, a filter, a string method) may grow a value
beyond its largest input, in characters or sequence items. Growth, not size: data values (up to
the request body) pass through filters and string methods however large they are."""

MAX_PRODUCED_CHARS = 8 * MAX_OUTPUT_CHARS
"""Characters and items all operations of one render may produce, intermediate values
included: bounds memory when values pile up without being printed (``{% set %}`` blocks,
macros, lists grown in a namespace)."""

MAX_INT_BITS = 65_536
"""Largest integer ``*`` and ``**`` may make; already ~20,000 digits, more than Python prints."""

_CHECK_EVERY = 32
"""Budget steps (iterations, calls, filters) between two looks at the clock."""

PlaceholderType = Literal["text", "number", "url", "image", "email", "date", "list"]


class Placeholder(BaseModel):
    """A variable the template reads, as stored with the template version."""

    model_config = ConfigDict(frozen=True)

    name: str
    sample: str
    type: PlaceholderType = "text"
    required: bool = True


class TemplateError(ValueError):
    """Base of every template problem that is the caller's fault (a 4xx, or an item error).
    ``code`` is the fixed reason code of each kind."""

    code: ClassVar[str] = "template_error"


class TemplateSyntaxError(TemplateError):
    """The template is not valid Jinja2."""

    code: ClassVar[str] = "template_syntax_error"

    def __init__(self, message: str, lineno: int | None) -> None:
        self.message = message
        self.lineno = lineno
        where = f" (line {lineno})" if lineno is not None else ""
        super().__init__(f"template syntax error{where}: {message}")


class TemplateTooLarge(TemplateError):
    """The template source is over :data:`MAX_TEMPLATE_BYTES`."""

    code: ClassVar[str] = "template_too_large"

    def __init__(self, size: int, limit: int = MAX_TEMPLATE_BYTES) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"template is {size} bytes; the limit is {limit} bytes")


class MissingPlaceholders(TemplateError):
    """Required placeholders without a value; ``names`` lists each one."""

    code: ClassVar[str] = "missing_placeholders"

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        super().__init__("missing placeholders: " + ", ".join(self.names))


class TemplateRenderError(TemplateError):
    """The template failed while rendering (sandbox violation, bad expression, output too big)."""


class TemplateOutputTooLarge(TemplateRenderError):
    """The document, a value or all values of a render went over their size budget."""

    code: ClassVar[str] = "template_too_large"


class TemplateTimeout(TemplateError):
    """Compile or render went over its time budget, or a render over its iteration budget."""

    code: ClassVar[str] = "template_timeout"


class TemplateTooDeep(TemplateError):
    """The template nests too deeply to compile, or recursed (macros, recursive loops) too deep."""

    code: ClassVar[str] = "template_too_deep"


def normalize_key(key: str) -> str:
    """``' User  Name '`` -> ``'user_name'``: how data keys and placeholder names are matched."""
    return re.sub(r"[\s\-]+", "_", key.strip()).lower()


# --- Budget accounting -------------------------------------------------------------------


class _Deadline:
    """A clock for compile: lexer and code generator call :meth:`check` as they go."""

    __slots__ = ("deadline", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds / 2  # the other half is Python's compile

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateTimeout(f"template exceeded its {self.seconds:g} s compile budget")


class _Budget:
    """What one render has spent. Hot path: a loop iteration or a call is two additions and a
    comparison; the clock is read every :data:`_CHECK_EVERY` steps."""

    __slots__ = ("deadline", "iterations", "next_check", "produced", "seconds", "steps")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.steps = 0
        self.next_check = _CHECK_EVERY
        self.iterations = 0
        self.produced = 0

    def step(self) -> None:
        self.steps += 1
        if self.steps >= self.next_check:
            self.checkpoint()

    def checkpoint(self) -> None:
        self.next_check = self.steps + _CHECK_EVERY
        if self.iterations > MAX_ITERATIONS:
            raise TemplateTimeout(f"template exceeded its {MAX_ITERATIONS}-iteration budget")
        if time.monotonic() > self.deadline:
            raise TemplateTimeout(f"template exceeded its {self.seconds:g} s render budget")

    def produce(self, size: int) -> None:
        self.produced += size
        if self.produced > MAX_PRODUCED_CHARS:
            raise TemplateOutputTooLarge(
                f"template produced over {MAX_PRODUCED_CHARS} characters in all, over its budget")


_RENDER: ContextVar[_Budget | None] = ContextVar("posterflow_template_render", default=None)
"""The render in progress; a ContextVar so concurrent renders (threads) each have theirs."""
_COMPILING: ContextVar[_Deadline | None] = ContextVar("posterflow_template_compile", default=None)


_SIZED = (str, bytes, list, tuple, dict, set, frozenset, range)


def _size(value: Any) -> int:
    """Flat size: characters of a string, items of a container; what one operation allocates."""
    return len(value) if isinstance(value, _SIZED) else 0


def _text_size(value: Any, limit: int = MAX_OUTPUT_CHARS) -> int:
    """About ``len(str(value))``, counted without building it and given up past ``limit``:
    lists of shared references print exponentially larger than they are in memory."""
    if isinstance(value, str):
        return len(value)
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item) + 3
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 * len(item) + 2
            if total <= limit:
                stack.extend(item)
        elif isinstance(item, dict):
            total += 4 * len(item) + 2
            if total <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, Namespace):
            stack.append(item._Namespace__attrs)  # its repr prints them
            total += 12
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        else:
            total += 24
    return total


def _too_large(what: str, size: int, budget: int, name: str) -> TemplateOutputTooLarge:
    return TemplateOutputTooLarge(f"{what} would be {size} characters, over the {budget}-character {name} budget")


def _check_growth(what: str, size: int, largest_input: int) -> None:
    if size > largest_input + MAX_VALUE_CHARS:
        raise _too_large(what, size, largest_input + MAX_VALUE_CHARS, "value")


def _check_printable(what: str, value: Any) -> int:
    """Size ``value`` prints as, refused over :data:`MAX_OUTPUT_CHARS`."""
    size = _text_size(value)
    if size > MAX_OUTPUT_CHARS:
        raise _too_large(what, size, MAX_OUTPUT_CHARS, "output")
    return size


def _account(result: Any, inputs: tuple[Any, ...], what: str, printed: int = 0) -> Any:
    """Check a new value against the growth budget and count it towards the render's total.
    ``printed``: the text size of an input already measured (what a stringifying filter read).
    Hot path: the inputs are only measured for a result that could be over the budget."""
    size = _size(result)
    if size:
        if size > MAX_VALUE_CHARS:
            _check_growth(what, size, max(printed, _largest(*inputs)))
        budget = _RENDER.get()
        if budget is not None:
            budget.produce(size)
    return result


def _largest(*values: Any) -> int:
    return max(map(_size, values), default=0)


def _as_int(value: Any, default: int = 0) -> int:
    """An argument as the int the callee will use; anything else fails in the callee itself."""
    return value if isinstance(value, int) else default


def _arg(args: Sequence[Any], kwargs: Mapping[str, Any], index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


# --- Operators and formatting ------------------------------------------------------------

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?([a-zA-Z%])")
_NUMBER = re.compile(r"\d+")


def _check_percent(fmt: str, values: Any) -> None:
    """``fmt % values`` before it runs: padding and precision come from the format (or ``*``
    arguments), and a mapping lets one value be printed any number of times."""
    specs = [m for m in _PERCENT_SPEC.finditer(fmt) if m.group(3) != "%"]
    if not specs:
        return
    positional = values if isinstance(values, tuple) else (values,)
    stars = iter(v for v in positional if isinstance(v, int))
    padding = 0
    for spec in specs:
        for part in (spec.group(1), spec.group(2)):
            if part == "*":
                padding += abs(_as_int(next(stars, 0)))
            elif part:
                padding += int(part)
    items = list(values.values()) if isinstance(values, Mapping) else list(positional)
    largest = max((_text_size(v) for v in items), default=0)
    estimate = len(fmt) + padding + len(specs) * largest
    _check_growth("formatted string", estimate, max(len(fmt), largest))


def _check_product(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise _too_large("product", left.bit_length() + right.bit_length(), MAX_INT_BITS, "integer (bits)")
        return
    seq, times = (left, right) if isinstance(right, int) else (right, left)
    if isinstance(times, int) and isinstance(seq, (str, bytes, list, tuple)):
        _check_growth("repetition", len(seq) * times, len(seq))


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        bits = (abs(base).bit_length() - 1) * exponent
        if bits > MAX_INT_BITS:
            raise _too_large("power", bits, MAX_INT_BITS, "integer (bits)")


class _BoundedFormatter(SandboxedFormatter):
    """``str.format`` in the sandbox, refusing widths over the budget and stopping once the
    fields written exceed it (``"{0}{0}{0}…".format(big)``)."""

    def __init__(self, env: jinja2.Environment, limit: int, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self._left = limit
        self._limit = limit

    def format_field(self, value: Any, format_spec: str) -> Any:
        for number in _NUMBER.findall(format_spec):
            if len(number) > 7 or int(number) > MAX_VALUE_CHARS:
                raise _too_large("format width", int(number[:9]), MAX_VALUE_CHARS, "value")
        _check_printable("formatted field", value)
        out = super().format_field(value, format_spec)
        self._left -= len(out)
        if self._left < 0:
            raise _too_large("formatted string", self._limit - self._left, self._limit, "value")
        return out


class _BoundedEscapeFormatter(_BoundedFormatter, EscapeFormatter):
    pass


# --- String methods and filters that grow their input --------------------------------------


def _joined_size(sep: Any, items: Sequence[Any]) -> int:
    return _check_printable("joined items", items) + len(sep) * max(len(items) - 1, 0)


def _replaced_size(text: Any, old: Any, new: Any, count: Any) -> int:
    if not (isinstance(text, (str, bytes)) and isinstance(old, type(text)) and isinstance(new, (str, bytes))):
        return 0  # the callee converts or refuses its arguments
    source: Any = text  # str or bytes, with old of the same type
    hits = source.count(old) if old else len(text) + 1
    limit = _as_int(count, -1)
    if limit >= 0:
        hits = min(hits, limit)
    return len(text) + hits * max(len(new) - len(old), 0)


def _method_estimate(owner: Any, name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> int:
    """Size a str/bytes/int method's result will have where it can outgrow its inputs; 0 if not."""
    if isinstance(owner, int) and name == "to_bytes":
        return _as_int(_arg(args, kwargs, 0, "length", 1))
    if not isinstance(owner, (str, bytes)):
        return 0
    if name in ("center", "ljust", "rjust", "zfill"):
        return max(len(owner), _as_int(_arg(args, kwargs, 0, "width", 0)))
    if name == "expandtabs":
        tab = "\t" if isinstance(owner, str) else b"\t"
        return len(owner) + owner.count(tab) * max(_as_int(_arg(args, kwargs, 0, "tabsize", 8)), 1)  # type: ignore[arg-type]
    if name == "replace":
        return _replaced_size(owner, _arg(args, kwargs, 0, "old", ""), _arg(args, kwargs, 1, "new", ""),
                              _arg(args, kwargs, 2, "count", -1))
    if name == "translate":
        table = args[0] if args else None
        widest = max((len(v) for v in table.values() if isinstance(v, (str, bytes))), default=1) \
            if isinstance(table, Mapping) else 1
        return len(owner) * max(widest, 1)
    if name == "join" and args and isinstance(args[0], Sequence):
        return _joined_size(owner, args[0])
    return 0


_Estimate = Callable[[Any, Sequence[Any], Mapping[str, Any]], int]


def _center_size(value: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> int:
    return max(_text_size(value), _as_int(_arg(args, kwargs, 0, "width", 80)))


def _indent_size(value: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> int:
    width = _arg(args, kwargs, 0, "width", 4)
    prefix = len(width) if isinstance(width, str) else _as_int(width)
    return _text_size(value) + (str(value).count("\n") + 1) * prefix


def _wordwrap_size(value: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> int:
    text = str(value)
    width = max(_as_int(_arg(args, kwargs, 0, "width", 79), 79), 1)
    wrap = _arg(args, kwargs, 2, "wrapstring", None)
    return len(text) + (len(text) // width + text.count("\n") + 1) * len(str(wrap or "\n"))


def _replace_size(value: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> int:
    return _replaced_size(value, _arg(args, kwargs, 0, "old", ""), _arg(args, kwargs, 1, "new", ""),
                          _arg(args, kwargs, 2, "count", None))


def _format_size(value: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> int:
    if isinstance(value, str):
        _check_percent(value, dict(kwargs) if kwargs else tuple(args))
    return 0


def _join_size(value: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> int:
    return _joined_size(str(_arg(args, kwargs, 0, "d", "")), value) if isinstance(value, Sequence) else 0


def _sum_size(value: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> int:
    return sum(map(_size, value)) if isinstance(value, Sequence) else 0


def _batch_size(value: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> int:
    padded = len(args) > 1 or kwargs.get("fill_with") is not None  # the last batch is filled up
    return _size(value) + (_as_int(_arg(args, kwargs, 0, "linecount", 0)) if padded else 0)


def _slice_size(value: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> int:
    return _size(value) + _as_int(_arg(args, kwargs, 0, "slices", 0))


def _tojson_size(value: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> int:
    indent = max(_as_int(_arg(args, kwargs, 0, "indent", 0)), 0)
    return _check_printable("JSON", value) * (1 + indent)


_FILTER_ESTIMATES: dict[str, _Estimate] = {
    "center": _center_size, "indent": _indent_size, "wordwrap": _wordwrap_size, "replace": _replace_size,
    "format": _format_size, "join": _join_size, "sum": _sum_size, "batch": _batch_size, "slice": _slice_size,
    "tojson": _tojson_size,
}
"""Size the result of a filter will have where it can outgrow its inputs, computed before the
filter runs; their first argument is the filtered value."""


_STRINGIFYING_FILTERS = frozenset({
    "string", "join", "tojson", "pprint", "e", "escape", "forceescape", "urlencode", "xmlattr", "wordcount",
    "title", "upper", "lower", "capitalize", "trim", "striptags", "urlize", "truncate", "center", "indent",
    "wordwrap", "replace", "format",
})
"""Filters that turn their value into text: a list of shared references is checked first."""

_CONSUMING_FILTERS = frozenset({"join", "sum"})
"""Filters whose estimate needs the items: an iterator (``map``, ``select``) is listed first."""


def _budgeted_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` checked against the budgets. Always ``@pass_context``, whatever ``func`` was:
    Jinja evaluates other filters on constants while compiling, which is how
    ``"a"|center(999999999)`` used to run at upload."""
    passes = getattr(func, "jinja_pass_arg", None)
    first_arg: Callable[[jinja2.runtime.Context], Any] | None = {
        "context": lambda c: c, "eval_context": lambda c: c.eval_ctx, "environment": lambda c: c.environment,
    }.get(passes.name if passes is not None else "")
    stringifies = name in _STRINGIFYING_FILTERS
    consumes = name in _CONSUMING_FILTERS
    estimate = _FILTER_ESTIMATES.get(name)
    what = f"result of |{name}"

    @pass_context
    @functools.wraps(func)
    def run(context: jinja2.runtime.Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _RENDER.get()
        if budget is not None:
            budget.steps += 1
            if budget.steps >= budget.next_check:
                budget.checkpoint()
        if consumes and not isinstance(value, (Sequence, Mapping, set, frozenset)):
            value = list(value)  # the estimate needs the items; the filter would list them anyway
        printed = 0
        if stringifies:
            printed = len(value) if isinstance(value, str) else _check_printable(f"value given to |{name}", value)
        if estimate is not None:
            expected = estimate(_estimated_items(context, value, kwargs) if consumes else value, args, kwargs)
            if expected > MAX_VALUE_CHARS:
                _check_growth(what, expected, max(printed, _largest(value, *args, *kwargs.values())))
        result = func(value, *args, **kwargs) if first_arg is None else func(first_arg(context), value, *args, **kwargs)
        # _account, inlined: filters are on the hot path.
        size = len(result) if isinstance(result, _SIZED) and result is not value else 0
        if size:
            if size > MAX_VALUE_CHARS:
                _check_growth(what, size, max(printed, _largest(value, *args, *kwargs.values())))
            if budget is not None:
                budget.produced += size
                if budget.produced > MAX_PRODUCED_CHARS:
                    budget.produce(0)  # raises, with the message
        return result

    return run


def _estimated_items(context: jinja2.runtime.Context, value: Any, kwargs: Mapping[str, Any]) -> Any:
    """What ``|join`` and ``|sum`` add up: the items, or their ``attribute``."""
    if kwargs.get("attribute") is None or not isinstance(value, Sequence):
        return value
    getter = make_attrgetter(context.environment, kwargs["attribute"])
    return [getter(v) for v in value]


@pass_context
def _iterate(context: jinja2.runtime.Context, iterable: Any, text_chars: int = 0) -> Any:
    """What every ``{% for %}`` loops over (see :func:`_instrument`): ``iterable``, counted."""
    budget = _RENDER.get()
    return iterable if budget is None else _counted(iterable, budget, text_chars)


def _counted(iterable: Iterable[Any], budget: _Budget, text_chars: int) -> Iterator[Any]:
    for item in iterable:
        budget.iterations += 1
        if text_chars:
            budget.produce(text_chars)
        budget.steps += 1
        if budget.steps >= budget.next_check:
            budget.checkpoint()
        yield item


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """``lipsum()`` with its size bounded before it spends seconds making it."""
    words = _as_int(n) * _as_int(max)
    if words * 12 > MAX_VALUE_CHARS:
        raise _too_large("lipsum()", words * 12, MAX_VALUE_CHARS, "value")
    return str(generate_lorem_ipsum(n, html, min, max))


def _finalize(value: Any) -> Any:
    """Every ``{{ expression }}`` passes here before being escaped and written: counted, so
    output captured in ``{% set %}`` blocks and macros is bounded too."""
    if isinstance(value, str):
        size = len(value)
    elif isinstance(value, (int, float)):  # ints are capped at MAX_INT_BITS; ~a word each
        size = 8
    else:
        size = _check_printable("printed value", value)
    budget = _RENDER.get()
    if budget is not None:
        budget.produced += size
        if budget.produced > MAX_PRODUCED_CHARS:
            budget.produce(0)  # raises, with the message
    return value


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


_TYPE_HINTS: tuple[tuple[str, PlaceholderType], ...] = (
    (r"(^|_)(email|mail)$", "email"),
    (r"(^|_)(image|img|photo|picture|pic|avatar|logo|icon)(_url)?$", "image"),
    (r"(^|_)(url|link|href|website)$", "url"),
    (r"(^|_)(date|day|at|time)$", "date"),
    (r"(^|_)(rating|count|number|num|amount|price|score|age|total|qty|quantity|stars)$", "number"),
)

_SAMPLES: dict[PlaceholderType, str] = {
    "email": "jane@example.com",
    # A 1x1 transparent PNG: previews render without fetching anything.
    "image": (
        "data:image/png;base64,"
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    ),
    "url": "https://example.com",
    "date": "2026-01-22",
    "number": "5",
    "list": "",
}


def infer_type(name: str) -> PlaceholderType:
    key = normalize_key(name)
    for pattern, kind in _TYPE_HINTS:
        if re.search(pattern, key):
            return kind
    return "text"


def sample_for(name: str, kind: PlaceholderType) -> str:
    if kind != "text":
        return _SAMPLES[kind]
    return "Jane Doe" if "name" in normalize_key(name) else f"Sample {name.replace('_', ' ')}"


def extract_placeholders(html: str) -> list[Placeholder]:
    """Every variable the template reads, sorted by name, with an inferred type and sample.

    Raises :class:`TemplateSyntaxError` / :class:`TemplateTooLarge` like :func:`validate_template`.
    """
    compiled = _compile(html)
    names, optional, loops = compiled.names, compiled.optional, compiled.loops
    result = []
    for name in sorted(names):
        kind: PlaceholderType = "list" if name in loops else infer_type(name)
        result.append(Placeholder(name=name, sample=sample_for(name, kind), type=kind, required=name not in optional))
    return result


def merge_placeholders(
    extracted: Sequence[Placeholder], metadata: Iterable[Mapping[str, Any] | Placeholder]
) -> list[Placeholder]:
    """Caller-supplied placeholder metadata (upload's optional ``placeholders``) over the
    extracted defaults, matched by normalised name. Metadata naming a variable the template
    does not use is an error rather than silently kept."""
    by_key = {normalize_key(p.name): p for p in extracted}
    unknown: list[str] = []
    for entry in metadata:
        fields = entry.model_dump(exclude_unset=True) if isinstance(entry, Placeholder) else dict(entry)
        key = normalize_key(str(fields.get("name", "")))
        if key not in by_key:
            unknown.append(str(fields.get("name", "")))
            continue
        base = by_key[key]
        fields["name"] = base.name
        by_key[key] = Placeholder.model_validate({**base.model_dump(), **fields})
    if unknown:
        raise TemplateError("placeholder metadata for names the template does not use: " + ", ".join(unknown))
    return list(by_key.values())


def sample_data(placeholders: Iterable[Placeholder]) -> dict[str, Any]:
    """Values for a preview render."""
    return {p.name: ([] if p.type == "list" else p.sample) for p in placeholders}


def select_data(data: Mapping[str, Any], columns: Sequence[str] | None = None) -> dict[str, Any]:
    """Seed 000: the ``columns`` subset of ``data`` (all keys when None), keyed by normalised name.
    ``None`` values count as absent."""
    normalized = {normalize_key(str(k)): v for k, v in data.items() if v is not None}
    if columns is None:
        return normalized
    wanted = {normalize_key(c) for c in columns}
    return {k: v for k, v in normalized.items() if k in wanted}


def missing_placeholders(html: str, data: Mapping[str, Any], columns: Sequence[str] | None = None) -> list[str]:
    _, names, optional, _ = _compile(html)
    available = select_data(data, columns)
    return sorted(n for n in names - optional if normalize_key(n) not in available)


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
