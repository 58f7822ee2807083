"""Memoised per-request lookups in moto's server.

- ``DomainDispatcherApplication.get_backend_for_host`` lists every moto module and tries every
  service URL pattern on each request (~50 directory listings per request); the answer depends
  only on the host string and a static pattern table.
- ``BaseResponse.call_action`` runs ``inspect.getmembers`` over the response class on each
  request to find the action's method; a class's methods do not change at run time.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.core import responses as moto_responses
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_original = DomainDispatcherApplication.get_backend_for_host
_cache: dict[str | None, Any] = {}
_lock = threading.Lock()
_installed = False


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


def install() -> None:
    global _installed
    if _installed:
        return
    DomainDispatcherApplication.get_backend_for_host = _get_backend_for_host  # type: ignore[method-assign]
    moto_responses.method_names_from_class = _method_names_from_class
    _installed = True
