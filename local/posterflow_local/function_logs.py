"""Function output to files, one per function, as CloudWatch Logs keeps a log group per function.

On AWS, what a function prints (Powertools' JSON log lines, the EMF metric documents) goes to
its log group, never to the person who started the job. The local cloud runs every function as
threads of one process, so without this their output would interleave with ``posterflow
demo``'s progress bars on the terminal. :func:`route_function_output` swaps ``sys.stdout`` for
a writer that sends each write to the log file of the function whose invocation is running in
that context (the local Lambda runtime sets :data:`CURRENT_FUNCTION` for the invocation), and
everything else to the real stdout.

Writes from threads a handler starts itself carry no invocation context and reach the real
stdout; the handlers' own log lines and the metrics flush run in the invocation's context.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

# The function whose invocation is running in this context (set by the local Lambda runtime).
CURRENT_FUNCTION: contextvars.ContextVar[str | None] = contextvars.ContextVar("posterflow_local_function",
                                                                               default=None)


class FunctionOutput:
    """A ``sys.stdout`` stand-in: a running invocation's writes go to ``<dir>/<function>.log``."""

    def __init__(self, directory: Path, fallback: IO[str]) -> None:
        self.directory = directory
        self.fallback = fallback
        self._files: dict[str, IO[str]] = {}
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)

    def path(self, function: str) -> Path:
        return self.directory / f"{function}.log"

    def _target(self) -> IO[str]:
        function = CURRENT_FUNCTION.get()
        if function is None:
            return self.fallback
        with self._lock:
            handle = self._files.get(function)
            if handle is None:
                handle = self._files[function] = self.path(function).open("a", encoding="utf-8", buffering=1)
            return handle

    def write(self, text: str) -> int:
        target = self._target()
        if target is self.fallback:
            return target.write(text)
        with self._lock:  # whole writes only: lines of two invocations never interleave mid-line
            return target.write(text)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return False if CURRENT_FUNCTION.get() else self.fallback.isatty()

    def fileno(self) -> int:
        return self.fallback.fileno()

    @property
    def encoding(self) -> str:
        return "utf-8"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fallback, name)

    def close_files(self) -> None:
        with self._lock:
            for handle in self._files.values():
                handle.close()
            self._files.clear()


@contextlib.contextmanager
def route_function_output(directory: Path) -> Iterator[FunctionOutput]:
    """While open, functions' stdout goes to ``directory/<function>.log``."""
    real = sys.stdout
    output = FunctionOutput(directory, real)
    sys.stdout = output
    try:
        yield output
    finally:
        sys.stdout = real
        output.close_files()
