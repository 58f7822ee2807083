"""Parsed DynamoDB update expressions reused on the embedded AWS.

moto parses every UpdateExpression from scratch, twice per request (~150 µs each for a
five-action expression here), and its validator then deep-copies the tree (~150 µs) before
resolving names and values into it. Workers send the same few expressions thousands of times,
so one parsed tree per expression text is kept with its pickle: moto's two parses get that
shared tree (both only read it: the request handler looks for unused names, the backend hands
it to the validator), and the validator's copy comes from ``pickle.loads`` (~40 µs). Parse
errors are not cached: a bad expression raises from moto's parser exactly as before.

The validator then walks the tree once per check (ten walks), and moto's walker rebuilt each
check's node-type map at every node it visited; :func:`_traverse` builds it once per walk and
visits the same nodes in the same order, calling the same hooks. Checked by
tests/integration/test_local_fast_expressions.py: the same updates, good and bad, with the
patch and with moto's own parser give the same items and errors.
"""

from __future__ import annotations

import copy
import pickle
import threading
from typing import Any

from moto.dynamodb import models as ddb_models
from moto.dynamodb import responses as ddb_responses
from moto.dynamodb.parsing import ast_nodes as ddb_ast
from moto.dynamodb.parsing import validators as ddb_validators
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

from posterflow_local.patches._patch import Patch, Replacement

_PICKLED = "_posterflow_pickled"
_NODE: Any = ddb_ast.Node  # type: ignore[attr-defined]
_MAX_CACHED = 512

_original_make = UpdateExpressionParser.make
_cache: dict[str, Any] = {}
_lock = threading.Lock()


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


# (walker class, node class) -> index of the processing function for that node, -1 for a node
# the walker leaves alone, None for a child that is not a node. moto's nodes are ABCs, whose
# isinstance checks went through ABCMeta.__instancecheck__ ~680 times per update.
_plans: dict[tuple[type, type], int | None] = {}


def _plan(walker: Any, node_class: type, classes: tuple[type, ...]) -> int | None:
    key = (type(walker), node_class)
    found = _plans.get(key, -2)
    if found != -2:
        return found
    if not issubclass(node_class, _NODE):
        found = None
    elif not issubclass(node_class, walker.nodes_to_be_processed()):
        found = -1
    else:  # the first matching class wins, as in DepthFirstTraverser.process
        found = next((i for i, c in enumerate(classes) if issubclass(node_class, c)), -1)
    _plans[key] = found
    return found


def _walk(walker: Any, node: Any, child_id: int, classes: tuple[type, ...], functions: tuple[Any, ...]) -> Any:
    # moto's DepthFirstTraverser.traverse_node_recursively, deciding per node class once.
    plan = _plan(walker, type(node), classes)
    if plan is None:
        return node
    parent = node.parent
    children = node.children
    if children is not None:
        for i, child in enumerate(children):
            walker.pre_processing_of_child(node, i)
            _walk(walker, child, i, classes, functions)
    if plan >= 0:
        node = functions[plan](node)
        node.parent = parent
        if parent:
            parent.children[child_id] = node
    return node


def _traverse(self: Any, node: Any) -> Any:
    processing = self._processing_map()
    return _walk(self, node, -1, tuple(processing), tuple(processing.values()))


_descends: dict[type, bool] = {}
_BRANCHES: tuple[type, ...] = (ddb_ast.Expression, ddb_ast.UpdateExpressionFunction)  # type: ignore[attr-defined]


def _find_clauses(self: Any, clause_types: Any) -> list[Any]:
    # moto's Node.find_clauses (the validator's clause counts and path-overlap checks call it
    # for every action), with its two ABC isinstance checks per child decided per class.
    clauses: list[Any] = []
    for child in self.children or []:
        kind = type(child)
        if kind in clause_types:
            clauses.append(child)
            continue
        descend = _descends.get(kind)
        if descend is None:
            descend = _descends[kind] = issubclass(kind, _BRANCHES)
        if descend:
            clauses.extend(child.find_clauses(clause_types))
    return clauses


class _Parser:
    """Stands in for ``UpdateExpressionParser`` where moto's backend calls ``make``."""

    make = staticmethod(make)


PATCH = Patch("dynamodb_update_expressions", [
    Replacement(ddb_models, "UpdateExpressionParser", _Parser),
    # The request handler parses each expression too, to check for unused names and values.
    Replacement(ddb_responses, "UpdateExpressionParser", _Parser),
    Replacement(ddb_validators, "deepcopy", _deepcopy),
    Replacement(ddb_ast.DepthFirstTraverser, "traverse", _traverse),  # type: ignore[attr-defined]
    Replacement(ddb_ast.Node, "find_clauses", _find_clauses),  # type: ignore[attr-defined]
])
