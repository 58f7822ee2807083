"""DynamoDB item sizes on the embedded AWS without rebuilding the item, and SQS queue
attributes without re-deriving their names per message.

moto 5.2 enforces DynamoDB's 400 KB item limit in ``LimitedSizeDict.__setitem__`` by summing
the size of *every* attribute already in the item for each attribute set, and
``DynamoType.size`` sizes a map by wrapping each child in a new ``DynamoType``, which copies
the child's whole subtree. So building an item of n attributes sizes it n times over,
rebuilding its maps each time (a 1,000-item poster split spent ~30% of its CPU there), and an
UpdateItem that sets k attributes sizes the whole item k times.

:func:`install` makes sizing a walk over the existing tree (the same numbers, no copies) and
lets ``Item.__init__`` check the limit once over the finished item. That raises exactly when
moto's per-attribute checks would: sizes are non-negative, so the check of the last attribute
is the largest. Updates still check per attribute, as moto does, at the walk's cost.

moto's ``Queue.attributes`` converts each attribute's name from CamelCase with a character
loop, and SendMessage reads ``attributes`` once per message (~14 conversions per message);
the conversion is a pure function of the name, so it is cached. Checked by
tests/integration/test_local_fast_items.py: sizes, the limit on every write and the queue
attributes are the same with the patch and with moto's own code.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from moto.core import utils as core_utils
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models import dynamo_type as dt
from moto.dynamodb.models.utilities import bytesize

from posterflow_local.patches._patch import Patch, Replacement

DynamoType = dt.DynamoType

# moto's own limit (DynamoDB's 400 KB, measured by moto's authors at 409-410 KB).
ITEM_SIZE_LIMIT = 405_000
_SET_MEMBER_TYPES = {"SS": "S", "NS": "N", "BS": "B"}

_original_size = DynamoType.size
_original_camelcase = core_utils.camelcase_to_underscores


def value_size(value: Any) -> int:
    """``DynamoType.size`` of moto 5.2, computed on the tree as it is."""
    kind, raw = value.type, value.value
    if kind == "N":
        return len(str(raw))
    member = _SET_MEMBER_TYPES.get(kind)
    if member is not None:
        if member == "N":
            return sum(len(str(v)) for v in raw)
        return sum(1 if isinstance(v, bool) else bytesize(v) for v in raw)
    if kind == "L":
        return sum(value_size(v) if type(v) is DynamoType else v.size() for v in raw)
    if kind == "M":
        return sum(bytesize(k) + value_size(v if type(v) is DynamoType else DynamoType(v)) for k, v in raw.items())
    if isinstance(raw, bool):
        return 1
    return bytesize(raw)


def _entry_size(entry: Any) -> int:
    return value_size(entry) if type(entry) is DynamoType else bytesize(str(entry))


def attrs_size(attrs: dict[str, Any]) -> int:
    """What moto's ``LimitedSizeDict`` counts: every key and every value."""
    return sum(bytesize(str(k)) for k in attrs) + sum(_entry_size(v) for v in attrs.values())


def _size(self: Any) -> int:
    return value_size(self)


def _setitem(self: Any, key: str, value: Any) -> None:
    if attrs_size(self) + bytesize(key) + _entry_size(value) > ITEM_SIZE_LIMIT:
        raise ItemSizeTooLarge
    dict.__setitem__(self, key, value)


def _item_init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
    self.hash_key = hash_key
    self.range_key = range_key
    built = dt.LimitedSizeDict.__new__(dt.LimitedSizeDict)
    dict.__init__(built)
    for key, value in attrs.items():
        dict.__setitem__(built, key, DynamoType(value))
    if attrs_size(built) > ITEM_SIZE_LIMIT:
        raise ItemSizeTooLarge
    self.attrs = built


_CONVERTER = "camelcase_to_underscores"
_cached_camelcase = functools.lru_cache(maxsize=4096)(_original_camelcase)


def _moto_modules() -> list[Any]:
    return [module for name, module in list(sys.modules.items())
            if (name == "moto" or name.startswith("moto.")) and module is not None]


def _replacements() -> list[Replacement]:
    # Import the SQS models now, so their module-level binding of the converter exists to rebind.
    import moto.sqs.models  # noqa: F401

    return [
        Replacement(DynamoType, "size", _size),
        Replacement(dt.LimitedSizeDict, "__setitem__", _setitem),
        Replacement(dt.Item, "__init__", _item_init),
        # Every moto module loaded now that imported the converter by name.
        *(Replacement(module, _CONVERTER, _cached_camelcase)
          for module in _moto_modules() if module.__dict__.get(_CONVERTER) is _original_camelcase),
    ]


def _unbind_later_imports() -> None:
    # moto modules imported while the patch was in took the cached converter from
    # moto.core.utils; they get moto's own back too.
    for module in _moto_modules():
        if module.__dict__.get(_CONVERTER) is _cached_camelcase:
            module.__dict__[_CONVERTER] = _original_camelcase


PATCH = Patch("dynamodb_item_sizes", _replacements, before_remove=_unbind_later_imports)
