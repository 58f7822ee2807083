"""The Lambda runtime of the local cloud: runs function handlers in-process, as Lambda would.

Each function has a pool of instances up to its configured concurrency. An instance imports
the handler module once (its own copy, so module-level state such as a warm Chromium stays
with that instance, as in a Lambda execution environment) and is reused for later calls.

Timeouts, as Lambda enforces them: an invocation still running at its function's timeout fails
with ``Sandbox.Timedout`` and its instance is retired (Lambda discards the execution
environment), so the next call gets a fresh one. A handler runs in its caller's thread, and a
Python thread cannot be killed: one watchdog thread (:class:`_Watchdog`) raises
:class:`InvocationTimedOut` inside the late handler's thread with
``PyThreadState_SetAsyncExc``. That interrupts Python code at its next bytecode, so a runaway
loop ends within the watchdog's tick. It cannot interrupt a long C call (``time.sleep``, a
blocking socket read, a regex or C extension grinding): the exception waits for the call to
return. Meanwhile the instance is already retired (a fresh one serves the next request) and
whatever the late handler answers is discarded, so its caller (an SQS poller) sees only the
timeout. Two more limits of an in-process runtime: the handler's ``finally`` blocks run as it
unwinds (Lambda would freeze the environment instead), and an interruption in the middle of
an in-process call to the embedded AWS can leave that one emulated request half done.
"""

from __future__ import annotations

import contextvars
import ctypes
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
from typing import Any, ClassVar

from posterflow_local.function_logs import CURRENT_FUNCTION

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


class InvocationTimedOut(BaseException):
    """Raised inside a handler's thread once its invocation ran past the function's timeout.

    A ``BaseException``, like ``KeyboardInterrupt``: a handler's ``except Exception`` (a
    worker's per-record guard) must not catch it and carry on. Each timed-out invocation
    raises its own subclass, whose ``invocation`` says which call on the thread's stack is
    over (an outer call's timeout also unwinds the calls nested in it)."""

    invocation: ClassVar[_Invocation | None] = None


TIMEOUT_ERROR_TYPE = "Sandbox.Timedout"


class LambdaContext:
    """The context object Lambda passes to handlers (the attributes handlers use)."""

    def __init__(self, function_name: str, memory_mb: int, timeout_s: float) -> None:
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
        payload: dict[str, Any] = {"errorMessage": self.error_message, "errorType": self.error_type}
        if self.stack:  # Lambda's timeout error carries no stack trace
            payload["stackTrace"] = self.stack
        return payload


# In the idle pool, a freed slot: whoever takes it may create a new instance. A retirement
# puts one, so that a caller already waiting for an instance wakes up and makes one.
_VACANCY: Any = object()
# How often a caller waiting for a free instance looks up, so that a timeout of its own
# (outer) invocation can interrupt the wait; a blocked C-level wait could not be interrupted.
_POOL_WAIT_S = 0.25


@dataclass
class LocalFunction:
    name: str
    memory_mb: int
    timeout_s: float
    concurrency: int
    environment: dict[str, str]
    # Builds one instance's handler; called once per instance.
    load: Callable[[], Handler]
    _idle: queue.LifoQueue[Handler] = field(default_factory=queue.LifoQueue)
    _created: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    invocations: int = 0
    errors: int = 0
    timeouts: int = 0
    # Fault injection (posterflow_local.faults) runs the handler through this when set.
    interceptor: Callable[[str, Handler, Any, Any], Any] | None = None

    def _acquire(self) -> Handler:
        while True:
            try:
                handler = self._idle.get_nowait()
            except queue.Empty:
                handler = _VACANCY
            if handler is not _VACANCY:
                return handler
            if self._claim_slot():
                return self._create()
            try:
                handler = self._idle.get(timeout=_POOL_WAIT_S)
            except queue.Empty:
                continue
            if handler is not _VACANCY:
                return handler

    def _claim_slot(self) -> bool:
        with self._lock:
            if self._created < self.concurrency:
                self._created += 1
                return True
            return False

    def _create(self) -> Handler:
        try:
            return self.load()
        except BaseException:
            self._release_slot()
            raise

    def _release_slot(self) -> None:
        """An instance is gone (init error, killed, timed out): its slot may be filled again."""
        with self._lock:
            self._created -= 1
        self._idle.put(_VACANCY)

    def invoke(self, event: Any) -> InvokeResult:
        started = time.perf_counter()
        try:
            handler = self._acquire()
        except Exception as exc:  # an init error, as Lambda reports it
            return _error_result(exc, started)
        ctx = LambdaContext(self.name, self.memory_mb, self.timeout_s)
        inv = _watchdog.watch(self, ctx)
        # From here until the watchdog lets go of ``inv``, InvocationTimedOut may arrive.
        try:
            try:
                result, retire = self._call(handler, event, ctx, started)
            finally:
                in_time = _watchdog.finish(inv)
        except InvocationTimedOut as exc:
            if exc.invocation is not inv:
                # An outer invocation on this thread timed out: unwind to it. This instance
                # was interrupted mid-handler, so its state is suspect: retire it too.
                doomed, _ = _watchdog.settle(inv)
                if not doomed:
                    self._release_slot()
                self._record(_timeout_result(inv, started) if inv.doomed else _error_result(exc, started))
                raise
            _watchdog.finish(inv)  # again: the interruption may have cut the first one short
            in_time = False
        if not in_time:
            # The watchdog already retired the instance; whatever the handler answered after
            # its deadline does not count, and its instance never returns to the pool.
            return self._record(_timeout_result(inv, started))
        if retire:
            self._release_slot()
        else:
            self._idle.put(handler)
        return self._record(result)

    def _call(self, handler: Handler, event: Any, ctx: LambdaContext, started: float) -> tuple[InvokeResult, bool]:
        """Run the handler; answers its result and whether its instance must be retired."""
        try:
            intercept = self.interceptor
            # Each invocation runs in a copy of the caller's context: a handler's context
            # variables (the API's tenant) end with it, as a Lambda invocation's state would,
            # instead of leaking into the thread that invoked it.
            run = contextvars.copy_context().run
            payload = run(self._in_context, intercept, handler, event, ctx)
            return InvokeResult(payload=payload, duration_ms=(time.perf_counter() - started) * 1000), False
        except Exception as exc:
            return _error_result(exc, started), isinstance(exc, InstanceKilled)

    def _in_context(self, intercept: Any, handler: Handler, event: Any, ctx: LambdaContext) -> Any:
        CURRENT_FUNCTION.set(self.name)  # whose log file this invocation's output goes to
        return intercept(self.name, handler, event, ctx) if intercept else handler(event, ctx)

    def _record(self, result: InvokeResult) -> InvokeResult:
        with self._lock:
            self.invocations += 1
            if result.failed:
                self.errors += 1
            if result.error_type == TIMEOUT_ERROR_TYPE:
                self.timeouts += 1
        return result

    def _timed_out(self, inv: _Invocation) -> None:
        """The watchdog's side of a timeout: retire the instance now, even if its thread is
        stuck in a C call for a while yet, so that other requests get a fresh instance."""
        self._release_slot()
        log.warning("%s: %s", self.name, inv.message)


def _timeout_result(inv: _Invocation, started: float) -> InvokeResult:
    return InvokeResult(payload=None, error_type=TIMEOUT_ERROR_TYPE, error_message=inv.message,
                        duration_ms=(time.perf_counter() - started) * 1000)


def _error_result(exc: BaseException, started: float) -> InvokeResult:
    return InvokeResult(
        payload=None,
        error_type=type(exc).__name__,
        error_message=str(exc),
        stack=traceback.format_exception(exc)[-5:],
        duration_ms=(time.perf_counter() - started) * 1000,
    )


# ---- timeouts ------------------------------------------------------------------------------
# int PyThreadState_SetAsyncExc(unsigned long thread_id, PyObject *exc): schedules ``exc`` to be
# raised in that thread at its next bytecode; one pending exception per thread (a later call
# replaces it).
_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)
_set_async_exc.restype = ctypes.c_int
# The same function called with NULL: drops the thread's pending exception.
_clear_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi))


class _Absorbed(BaseException):
    """Replaces a thread's pending interruption so that it is taken at a known place."""


def _absorb_pending() -> None:
    """Drop any interruption pending for the current thread.

    A plain clear (NULL) would leave CPython's "async exception pending" flag set, making every
    thread take the eval loop's slow path at each call from then on (~5 % measured); delivering
    an exception resets it. So the pending one is replaced by ``_Absorbed`` and taken right here:
    it is raised as the ctypes call returns, or at the loop's first backward jump."""
    thread_id = threading.get_ident()
    try:
        _set_async_exc(thread_id, _Absorbed)
        for _ in range(100):
            pass
    except _Absorbed:
        return
    _clear_async_exc(thread_id, None)  # not delivered (should not happen): drop it anyway


@dataclass(eq=False, slots=True)
class _Invocation:
    """One running invocation, as the watchdog sees it (hashed by identity)."""

    fn: LocalFunction
    request_id: str
    deadline: float  # time.monotonic()
    timeout_s: float
    thread_id: int
    seq: int  # start order: of two unfinished invocations on a thread, the smaller is the outer
    doomed: bool = False
    message: str = ""
    error: type[InvocationTimedOut] = InvocationTimedOut


class _Watchdog:
    """One thread that times out the invocations of every function.

    Hot path: ``watch`` and ``finish`` are one dict insert and one dict pop, without a lock; a
    pop is atomic, so exactly one of the invoker (finished in time) and the watchdog (deadline
    passed) takes an invocation. The watchdog sends the interruption under ``_lock``, and an
    invoker that lost the race takes the same lock before absorbing what may still be pending,
    so no interruption outlives its invocation.

    Invocations nest on one thread (the API function invokes the render function in-process).
    An interruption that lands while a nested call is unwinding may cut that call's own
    bookkeeping short, leaving stale entries; the outer call, whose timeout it is, settles every
    entry of its thread started after it (``settle``), before its ``invoke`` returns.
    """

    def __init__(self, tick_s: float = 0.05) -> None:
        self.tick_s = tick_s
        self._running: dict[_Invocation, None] = {}
        self._doomed: dict[_Invocation, None] = {}
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, fn: LocalFunction, ctx: LambdaContext) -> _Invocation:
        if self._thread is None:
            self._start()
        inv = _Invocation(fn, ctx.aws_request_id, ctx._deadline, fn.timeout_s, threading.get_ident(),
                          next(self._seq))
        self._running[inv] = None
        return inv

    def finish(self, inv: _Invocation) -> bool:
        """The handler is done: True if in time; False if the watchdog timed it out."""
        if self._running.pop(inv, _VACANCY) is not _VACANCY:
            return True
        _, outer = self.settle(inv)
        if outer is not None:
            # An outer invocation on this thread timed out too: this call unwinds into it. Its
            # interruption may have been absorbed just now, so raise it again.
            raise outer.error()
        return False

    def settle(self, inv: _Invocation) -> tuple[bool, _Invocation | None]:
        """Let go of ``inv`` and of every invocation nested in it on this thread, absorbing any
        interruption still pending. Answers whether ``inv`` timed out, and the innermost outer
        invocation on the thread that timed out (if any)."""
        with self._lock:
            _absorb_pending()
            outer: _Invocation | None = None
            for table in (self._running, self._doomed):
                for other in list(table):
                    if other.thread_id != inv.thread_id:
                        continue
                    if other.seq >= inv.seq:
                        table.pop(other, None)
                    elif table is self._doomed and (outer is None or other.seq > outer.seq):
                        outer = other
            return inv.doomed, outer

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="lambda-timeouts", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        while True:
            time.sleep(self.tick_s)
            if not self._running:
                continue
            try:
                now = time.monotonic()
                for inv in [i for i in list(self._running) if i.deadline <= now]:
                    if self._doom(inv, now):
                        inv.fn._timed_out(inv)
            except Exception:  # keep timing out the others
                log.exception("lambda timeout watchdog")

    def _doom(self, inv: _Invocation, now: float) -> bool:
        with self._lock:
            if self._running.pop(inv, _VACANCY) is _VACANCY:
                return False  # finished in time after all
            elapsed = inv.timeout_s + (now - inv.deadline)
            inv.message = f"RequestId: {inv.request_id} Error: Task timed out after {elapsed:.2f} seconds"
            inv.error = type("InvocationTimedOut", (InvocationTimedOut,), {"invocation": inv})
            inv.doomed = True
            self._doomed[inv] = None
            _set_async_exc(inv.thread_id, inv.error)
            return True


_watchdog = _Watchdog()


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
