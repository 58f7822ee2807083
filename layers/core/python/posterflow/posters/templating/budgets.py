"""Budget accounting of one compile or render (the compile clock, the render's steps, iterations
and characters produced), value sizes, and the checks of the growing operators (``*``, ``**``,
``%``) and of ``str.format``'s bounded formatter."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedFormatter
from jinja2.utils import Namespace
from markupsafe import EscapeFormatter

from posterflow.posters.templating.errors import TemplateOutputTooLarge, TemplateTimeout
from posterflow.posters.templating.limits import (
    _CHECK_EVERY,
    MAX_INT_BITS,
    MAX_ITERATIONS,
    MAX_OUTPUT_CHARS,
    MAX_PRODUCED_CHARS,
    MAX_VALUE_CHARS,
)

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
