"""Bounded filters and string methods: the size each one's result will have, estimated before
it runs, and the wrapper putting every filter on the budget; also the loop counter every
``{% for %}`` goes through, ``lipsum()`` and the ``finalize`` every printed value passes."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import jinja2
from jinja2.filters import make_attrgetter
from jinja2.utils import generate_lorem_ipsum, pass_context

from posterflow.posters.templating import budgets
from posterflow.posters.templating.budgets import (
    _SIZED,
    _arg,
    _as_int,
    _Budget,
    _check_growth,
    _check_percent,
    _check_printable,
    _largest,
    _size,
    _text_size,
    _too_large,
)
from posterflow.posters.templating.limits import MAX_PRODUCED_CHARS, MAX_VALUE_CHARS

_RENDER = budgets._RENDER
"""The render in progress (see :mod:`.budgets`), bound by assignment, not imported: CPython 3.11
compiles a method call on an imported name (``_RENDER.get()``) without LOAD_METHOD, making a
bound method each time, and this is read on the hot path (every filter, call, print, loop)."""

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
