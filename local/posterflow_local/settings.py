"""Environment variables only the local cloud reads, declared like the library's.

The library's settings are in :mod:`posterflow.config`; these belong to ``local/`` (the library
never reads them), so they live here, as :class:`~posterflow.config.Setting` records with the
scope "local cloud only". The README's configuration table is checked against both registries.
"""

from __future__ import annotations

from posterflow.config import Scope, Setting

CHECK_FAST_SERIALIZE = Setting(
    "POSTERFLOW_CHECK_FAST_SERIALIZE",
    "`1` serialises hot DynamoDB responses both ways and fails on a difference (slow; for checking "
    "`patches/dynamodb_serialize.py`)",
    Scope.LOCAL_CLOUD,
)

SETTINGS: tuple[Setting, ...] = (CHECK_FAST_SERIALIZE,)


def check_fast_serialize() -> bool:
    """Read per call: a test turns it on around one run of the patched serialiser."""
    return CHECK_FAST_SERIALIZE.flag()
