"""Memoised per-request lookups in moto's server.

- ``DomainDispatcherApplication.get_backend_for_host`` lists every moto module and tries every
  service URL pattern on each request (~50 directory listings per request); the answer depends
  only on the host string and a static pattern table.
- ``BaseResponse.call_action`` runs ``inspect.getmembers`` over the response class on each
  request to find the action's method; a class's methods do not change at run time.

Both answers are memoised. Checked by tests/integration/test_local_patches_dispatch.py: the
same requests, to every service the stack uses, get the same backends and responses with the
caches and without.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.core import responses as moto_responses
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from posterflow_local.patches._patch import Patch, Replacement

_original = DomainDispatcherApplication.get_backend_for_host
_cache: dict[str | None, Any] = {}
_lock = threading.Lock()


def _get_backend_for_host(self: Any, host: str | None) -> Any:
    try:
        return _cache[host]
    except KeyError:
        pass
    backend = _original(self, host)
    if backend is not None:
        with _lock:
            _cache[host] = backend
    return backend


_method_names: dict[object, list[str]] = {}
_original_method_names = moto_responses.method_names_from_class


def _method_names_from_class(clazz: object) -> list[str]:
    names = _method_names.get(clazz)
    if names is None:
        names = _method_names[clazz] = _original_method_names(clazz)
    return names


PATCH = Patch("dispatch", [
    Replacement(DomainDispatcherApplication, "get_backend_for_host", _get_backend_for_host),
    Replacement(moto_responses, "method_names_from_class", _method_names_from_class),
])
