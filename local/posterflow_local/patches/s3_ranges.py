"""Ranged GETs on the embedded S3 read only the range.

moto answers a ranged GET by reading the whole object into memory and then slicing it, so a
crop worker reading one 3 MB photo out of a 345 MB ZIP paid ~1 s per photo on the local cloud
(12 ms on a small object) — a cost S3 does not have. While moto serves a GET that carries a
Range header, ``FakeKey.value`` hands out a lazy view whose slices read just those bytes from
the object's buffer; anything that needs the whole value still gets real bytes. Checked by
tests/integration/test_local_patches_s3.py: the same ranged GETs with the patch and without
give the same bytes, status and headers.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.s3 import models as s3_models
from moto.s3 import responses as s3_responses

from posterflow_local.patches._patch import Patch, Replacement

_FakeKey = s3_models.FakeKey
_S3Response = s3_responses.S3Response
_original_value = _FakeKey.value
_original_key_response = _S3Response.key_response
_local = threading.local()


class _LazyValue:
    """Enough of ``bytes`` for moto's range handling: length, truthiness and slices."""

    def __init__(self, key: Any) -> None:
        self._key = key

    def __len__(self) -> int:
        return int(self._key.contentsize)

    def __getitem__(self, item: slice) -> bytes:
        if not isinstance(item, slice):
            return bytes(self)[item]
        start, stop, step = item.indices(len(self))
        if step != 1:
            return bytes(self)[item]
        with self._key.lock:
            self._key._value_buffer.seek(start)
            return bytes(self._key._value_buffer.read(max(0, stop - start)))

    def __bytes__(self) -> bytes:
        return bytes(_original_value.fget(self._key))  # type: ignore[attr-defined]


def _value(self: Any) -> Any:
    if getattr(_local, "ranged", False):
        return _LazyValue(self)
    return _original_value.fget(self)  # type: ignore[attr-defined]


def _key_response(self: Any, request: Any, full_url: str, headers: dict[str, Any]) -> Any:
    ranged = request.method == "GET" and bool(request.headers.get("range"))
    _local.ranged = ranged
    try:
        status, response_headers, content = _original_key_response(self, request, full_url, headers)
    finally:
        _local.ranged = False
    if isinstance(content, _LazyValue):
        # The range was not usable (several ranges, unparsable): S3 answers with the whole object.
        content = bytes(content)
    return status, response_headers, content


PATCH = Patch("s3_ranges", [
    Replacement(_FakeKey, "value", property(_value, _original_value.fset)),  # type: ignore[attr-defined]
    Replacement(_S3Response, "key_response", _key_response),
])
