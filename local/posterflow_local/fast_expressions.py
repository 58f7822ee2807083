"""Parsed DynamoDB update expressions reused on the embedded AWS.

moto parses every UpdateExpression from scratch, twice per request (~150 µs each for a
five-action expression here), and its validator then deep-copies the tree (~150 µs) before
resolving names and values into it. Workers send the same few expressions thousands of times,
so one parsed tree per expression text is kept with its pickle: moto's two parses get that
shared tree (both only read it: the request handler looks for unused names, the backend hands
it to the validator), and the validator's copy comes from ``pickle.loads`` (~40 µs). Parse
errors are not cached: a bad expression raises from moto's parser exactly as before.
"""

from __future__ import annotations

import copy
import pickle
import threading
from typing import Any

from moto.dynamodb import models as ddb_models
from moto.dynamodb import responses as ddb_responses
from moto.dynamodb.parsing import validators as ddb_validators
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

_PICKLED = "_posterflow_pickled"
_MAX_CACHED = 512

_original_make = UpdateExpressionParser.make
_cache: dict[str, Any] = {}
_lock = threading.Lock()
_installed = False


def _fresh(pickled: bytes) -> Any:
    tree = pickle.loads(pickled)  # bytes this module pickled itself
    setattr(tree, _PICKLED, pickled)  # a copy of the copy is made the same way
    return tree


def make(expression: str) -> Any:
    tree = _cache.get(expression)
    if tree is None:
        tree = _original_make(expression)
        try:
            setattr(tree, _PICKLED, pickle.dumps(tree, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception:  # an unpicklable tree: use it as moto made it, uncached
            return tree
        with _lock:
            if len(_cache) >= _MAX_CACHED:
                _cache.clear()
            _cache[expression] = tree
    return tree


def _deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
    pickled = getattr(value, _PICKLED, None) if not isinstance(value, dict | list) else None
    if isinstance(pickled, bytes):
        return _fresh(pickled)
    return copy.deepcopy(value, memo)


class _Parser:
    """Stands in for ``UpdateExpressionParser`` where moto's backend calls ``make``."""

    make = staticmethod(make)


def install() -> None:
    global _installed
    if _installed:
        return
    # The request handler parses each expression too, to check for unused names and values.
    ddb_models.UpdateExpressionParser = _Parser
    ddb_responses.UpdateExpressionParser = _Parser
    ddb_validators.deepcopy = _deepcopy  # type: ignore[assignment]
    _installed = True
