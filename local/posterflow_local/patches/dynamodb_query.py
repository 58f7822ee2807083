"""DynamoDB Query on the embedded AWS costing what the partition costs, not the table.

moto 5's ``Table.query`` starts from ``Table.all_items()``, which collects *every* item in
the table and sorts them all by key (Python comparisons of ``DynamoType``), then keeps the
queried partition or index key and sorts that again. With a 10,000-item job in the table,
each job-status poll, results page, progress subscription look-up or archive page paid for
the whole table. During a query this module narrows ``all_items()``:

- a base-table query gets only its partition (``Table.items[hash_key]``), which moto then
  sorts by range key as before;
- an index query gets the items unsorted, because moto sorts the matches by the index keys
  followed by the table keys afterwards, a total order that makes the first sort moot.

Results are unchanged; only the work is. Every other caller of ``all_items`` (scans,
exports, PartiQL) still gets moto's sorted list. Checked by
tests/integration/test_local_fast_query.py: the same queries (pages, both directions, the
index) with the patch and with moto's full walk give the same answers.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.dynamodb.models.table import Table

from posterflow_local.patches._patch import Patch, Replacement

_original_query = Table.query
_original_all_items = Table.all_items
_scope = threading.local()

# Table.query(hash_key, range_comparison, range_objs, limit, start, forward, projection, index_name, ...)
_INDEX_NAME_POSITION = 7


def _query(self: Table, *args: Any, **kwargs: Any) -> Any:
    index_name = args[_INDEX_NAME_POSITION] if len(args) > _INDEX_NAME_POSITION else kwargs.get("index_name")
    hash_key = args[0] if args else kwargs.get("hash_key")
    outer = getattr(_scope, "table", None), getattr(_scope, "partition", None)
    _scope.table = self
    _scope.partition = None if index_name else hash_key
    try:
        return _original_query(self, *args, **kwargs)
    finally:
        _scope.table, _scope.partition = outer


def _all_items(self: Table) -> list[Any]:
    if getattr(_scope, "table", None) is not self:
        return _original_all_items(self)
    partition = _scope.partition
    if partition is None:
        if not self.range_key_attr:
            return list(self.items.values())
        return [item for hash_set in self.items.values() for item in hash_set.values()]
    found = self.items.get(partition)
    if found is None:
        return []
    if not self.range_key_attr:
        return [found]
    return list(found.values())


PATCH = Patch("dynamodb_query", [
    Replacement(Table, "query", _query),
    Replacement(Table, "all_items", _all_items),
])
