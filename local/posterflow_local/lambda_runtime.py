"""The Lambda runtime of the local cloud: runs function handlers in-process, as Lambda would.

Each function has a pool of instances up to its configured concurrency. An instance imports
the handler module once (its own copy, so module-level state such as a warm Chromium stays
with that instance, as in a Lambda execution environment) and is reused for later calls.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import os
import queue
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

Handler = Callable[[Any, Any], Any]
log = logging.getLogger("posterflow.local.lambda")

# Importing a handler module reads its environment (Powertools takes the service name at
# import), so imports happen one at a time with the function's own variables in place.
_import_lock = threading.Lock()


class UnknownFunctionError(LookupError):
    pass


class InstanceKilled(Exception):
    """The execution environment died mid-invocation (fault injection): the instance is
    retired, as Lambda replaces a crashed environment, and the invocation fails."""



class LambdaContext:
    """The context object Lambda passes to handlers (the attributes handlers use)."""

    def __init__(self, function_name: str, memory_mb: int, timeout_s: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class InvokeResult:
    payload: Any
    error_type: str | None = None
    error_message: str | None = None
    stack: list[str] = field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def failed(self) -> bool:
        return self.error_type is not None

    def error_payload(self) -> dict[str, Any]:
        return {"errorMessage": self.error_message, "errorType": self.error_type, "stackTrace": self.stack}


@dataclass
class LocalFunction:
    name: str
    memory_mb: int
    timeout_s: int
    concurrency: int
    environment: dict[str, str]
    # Builds one instance's handler; called once per instance.
    load: Callable[[], Handler]
    _idle: queue.LifoQueue[Handler] = field(default_factory=queue.LifoQueue)
    _created: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    invocations: int = 0
    errors: int = 0
    # Fault injection (posterflow_local.faults) runs the handler through this when set.
    interceptor: Callable[[str, Handler, Any, Any], Any] | None = None

    def _acquire(self) -> Handler:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._created < self.concurrency:
                self._created += 1
                create = True
            else:
                create = False
        if create:
            try:
                return self.load()
            except BaseException:
                with self._lock:
                    self._created -= 1
                raise
        return self._idle.get()

    def invoke(self, event: Any) -> InvokeResult:
        started = time.perf_counter()
        try:
            handler = self._acquire()
        except Exception as exc:  # an init error, as Lambda reports it
            return _error_result(exc, started)
        retire = False
        try:
            ctx = LambdaContext(self.name, self.memory_mb, self.timeout_s)
            intercept = self.interceptor
            payload = intercept(self.name, handler, event, ctx) if intercept else handler(event, ctx)
            result = InvokeResult(payload=payload, duration_ms=(time.perf_counter() - started) * 1000)
        except Exception as exc:
            retire = isinstance(exc, InstanceKilled)
            result = _error_result(exc, started)
        finally:
            if retire:
                with self._lock:
                    self._created -= 1
            else:
                self._idle.put(handler)
        with self._lock:
            self.invocations += 1
            if result.failed:
                self.errors += 1
        return result


def _error_result(exc: BaseException, started: float) -> InvokeResult:
    return InvokeResult(
        payload=None,
        error_type=type(exc).__name__,
        error_message=str(exc),
        stack=traceback.format_exception(exc)[-5:],
        duration_ms=(time.perf_counter() - started) * 1000,
    )


_module_counter = itertools.count()


def module_loader(path: Path, attribute: str, environment: dict[str, str]) -> Callable[[], Handler]:
    """A loader that imports ``path`` as a fresh module per instance and returns its handler."""

    def load() -> Handler:
        if not path.exists():
            raise FileNotFoundError(f"handler file {path} does not exist")
        name = f"posterflow_fn_{path.parent.name}_{next(_module_counter)}"
        with _import_lock:
            saved = {k: os.environ.get(k) for k in environment}
            os.environ.update(environment)
            try:
                spec = importlib.util.spec_from_file_location(name, path)
                assert spec is not None and spec.loader is not None
                module: ModuleType = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                # Let a handler import sibling modules of its folder, as in a Lambda zip.
                sys.path.insert(0, str(path.parent))
                try:
                    spec.loader.exec_module(module)
                finally:
                    sys.path.remove(str(path.parent))
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
        handler = getattr(module, attribute, None)
        if not callable(handler):
            raise AttributeError(f"{path} has no callable {attribute!r}")
        return handler

    return load


class LambdaRuntime:
    """All functions of the local cloud, by name."""

    def __init__(self) -> None:
        self._functions: dict[str, LocalFunction] = {}

    def register(self, fn: LocalFunction) -> None:
        self._functions[fn.name] = fn

    def names(self) -> list[str]:
        return sorted(self._functions)

    def get(self, name_or_arn: str) -> LocalFunction:
        name = function_name_from(name_or_arn)
        try:
            return self._functions[name]
        except KeyError:
            raise UnknownFunctionError(
                f"no function named {name!r}; known functions: {', '.join(self.names()) or 'none'}"
            ) from None

    def invoke(self, name_or_arn: str, event: Any) -> InvokeResult:
        return self.get(name_or_arn).invoke(event)


def function_name_from(name_or_arn: str) -> str:
    """``name``, ``name:qualifier``, or an ARN ``arn:aws:lambda:region:acct:function:name[:qualifier]``."""
    if name_or_arn.startswith("arn:"):
        parts = name_or_arn.split(":")
        return parts[6] if len(parts) > 6 else name_or_arn
    return name_or_arn.split(":", 1)[0]
