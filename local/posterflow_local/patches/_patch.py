"""The one way the local cloud changes moto (and botocore): a :class:`Patch` names the
attributes it replaces, remembers what was there, and puts it back.

Each patch module declares ``PATCH = Patch(name, replacements)``; ``patches.install_all`` and
``patches.remove_all`` call :meth:`Patch.install` and :meth:`Patch.remove`, and the
differential tests remove a patch to run the same calls on moto's own code.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

# What an owner's own ``__dict__`` held before a patch: a value, or nothing (inherited).
_ABSENT: Any = object()


@dataclass(frozen=True)
class Replacement:
    owner: Any  # a class or a module
    attribute: str
    new: Any


@dataclass(frozen=True)
class _Saved:
    owner: Any
    attribute: str
    original: Any  # the owner's own value, or _ABSENT when the attribute was inherited


Replacements = Sequence[Replacement] | Callable[[], Sequence[Replacement]]


class Patch:
    """A set of attribute replacements installed and removed together, each idempotently.

    ``replacements`` may be a callable, evaluated at each install, for replacements that
    depend on what is loaded then (e.g. every moto module holding a function by name).
    ``before_remove`` runs, with the patch still installed, to hand state kept by the patch
    back to moto's data structures."""

    def __init__(self, name: str, replacements: Replacements, *,
                 before_remove: Callable[[], None] | None = None) -> None:
        self.name = name
        self._replacements = replacements
        self._before_remove = before_remove
        self._saved: list[_Saved] = []
        self._lock = threading.Lock()
        if not callable(replacements):
            # Fail at import, naming the attribute, when moto no longer has what we replace.
            for r in replacements:
                _require(r)

    @property
    def installed(self) -> bool:
        return bool(self._saved)

    def replacements(self) -> list[Replacement]:
        found = self._replacements() if callable(self._replacements) else self._replacements
        return list(found)

    def install(self) -> None:
        with self._lock:
            if self._saved:
                return
            replacements = self.replacements()
            for r in replacements:
                _require(r)
            saved: list[_Saved] = []
            for r in replacements:
                saved.append(_Saved(r.owner, r.attribute, vars(r.owner).get(r.attribute, _ABSENT)))
                setattr(r.owner, r.attribute, r.new)
            self._saved = saved

    def remove(self) -> None:
        with self._lock:
            if not self._saved:
                return
            if self._before_remove is not None:
                self._before_remove()
            # Reverse order: an attribute replaced twice ends with its first original.
            for s in reversed(self._saved):
                if s.original is _ABSENT:
                    delattr(s.owner, s.attribute)
                else:
                    setattr(s.owner, s.attribute, s.original)
            self._saved = []

    @contextlib.contextmanager
    def removed(self) -> Iterator[None]:
        """moto's own code for the duration of a block (differential tests), then the patch
        again, even if the block fails."""
        self.remove()
        try:
            yield
        finally:
            self.install()

    def originals(self) -> list[tuple[Any, str, Any]]:
        """(owner, attribute, original own value or None if inherited) of the installed replacements."""
        return [(s.owner, s.attribute, None if s.original is _ABSENT else s.original) for s in self._saved]

    def __repr__(self) -> str:
        return f"Patch({self.name!r}, installed={self.installed})"


def _require(r: Replacement) -> None:
    if not hasattr(r.owner, r.attribute):
        owner = getattr(r.owner, "__qualname__", None) or getattr(r.owner, "__name__", repr(r.owner))
        raise AttributeError(f"{owner} has no attribute {r.attribute!r} to patch: is moto the supported version?")
