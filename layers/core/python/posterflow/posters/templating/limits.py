"""Limits of a template: the largest source accepted and the time, iteration and size budgets
of compiling and rendering it. Constants only, read by :mod:`.errors`, :mod:`.budgets` and the
environment."""

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
