"""Fault injection for the local cloud (off unless a test or tool turns it on).

Three kinds of fault, each standing in for something AWS or Lambda really does:

- **AWS errors**: a WSGI middleware in front of moto answers a seeded-random fraction of S3,
  DynamoDB and SQS calls with throttling (S3 ``503 SlowDown``, DynamoDB ``400
  ProvisionedThroughputExceededException``, SQS ``400 ThrottlingException``) or ``500
  InternalError``. By default the request never reaches moto; with ``applied_share`` some
  500s are answered *after* moto applied the write, as a real service can, so the client's
  retry repeats a write that already happened. The Lambda Invoke API is never touched: it
  is the function runtime, not an AWS data-plane call.
- **A worker killed mid-batch**: the function instance handles the first part of an SQS
  batch, then dies (raises :class:`~posterflow_local.lambda_runtime.InstanceKilled`) and is
  retired from the pool; or the poller "dies" after the invocation, before deleting. Either
  way the batch stays on the queue and comes back after the visibility timeout.
- **Chromium killed mid-render**: the browser process of the process-wide render engine is
  SIGKILLed while a page is rendering.

``redelivery_s`` shortens the visibility of messages a fault (or a failure) left on a queue,
standing in for the visibility timeout expiring (the render queue's is 12 minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
import re
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posterflow_local.embedded_aws import Middleware, WSGIApp
from posterflow_local.lambda_runtime import Handler, InstanceKilled, LambdaRuntime

_CREDENTIAL = re.compile(r"Credential=[^/,&]+(?:/|%2F)[^/,&]+(?:/|%2F)[^/,&]+(?:/|%2F)([a-z0-9-]+)(?:/|%2F)")
_LAMBDA_PATH = re.compile(r"^/2015-03-31/functions/")
# Services whose calls may fail; DynamoDB Streams is its own key so the stream poller can be
# spared or targeted on its own.
SERVICES = ("s3", "dynamodb", "dynamodbstreams", "sqs")


@dataclass(frozen=True)
class FaultConfig:
    error_rates: dict[str, float] = field(default_factory=dict)
    """Probability that a call to the service (see :data:`SERVICES`) fails."""
    throttle_share: float = 0.5
    """Of the failed calls, the share answered as throttling; the rest are 500s."""
    applied_share: float = 0.0
    """Of the 500s to writes, the share answered after moto applied the request."""
    redelivery_s: int | None = None
    """Visibility given to messages left on a queue by a failure (None: the queue's own)."""
    seed: int = 0


@dataclass
class FaultStats:
    calls: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    """By ``service:code`` (``:applied`` when moto ran the request first)."""
    killed_instances: int = 0
    dropped_batches: int = 0
    left_on_queue: int = 0
    chromium_kills: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls), "injected": dict(self.injected),
            "injected_total": sum(self.injected.values()), "killed_instances": self.killed_instances,
            "dropped_batches": self.dropped_batches, "left_on_queue": self.left_on_queue,
            "chromium_kills": self.chromium_kills,
        }


@dataclass
class _Kill:
    remaining: int
    fraction: float


class Faults:
    """The fault switchboard of one local cloud. Every hook is a no-op until armed."""

    def __init__(self, runtime: LambdaRuntime, config: FaultConfig | None = None) -> None:
        self._runtime = runtime
        self._lock = threading.Lock()
        self.config = config or FaultConfig()
        self._rng = random.Random(self.config.seed)
        self.stats = FaultStats()
        self._kills: dict[str, _Kill] = {}
        self._drops: dict[str, int] = {}
        self._targeted: list[list[Any]] = []  # [service, body fragment, times left]

    # ---- switching -------------------------------------------------------------------------
    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)

    def clear(self) -> None:
        """Everything off; armed kills and drops are forgotten; stats are kept."""
        with self._lock:
            self.config = FaultConfig()
            self._drops.clear()
            self._targeted.clear()
            for name in list(self._kills):
                self._runtime.get(name).interceptor = None
            self._kills.clear()

    @contextlib.contextmanager
    def active(self, config: FaultConfig) -> Iterator[FaultStats]:
        """Faults on for the block; yields fresh stats for the block."""
        self.stats = FaultStats()
        self.configure(config)
        try:
            yield self.stats
        finally:
            self.clear()

    @property
    def enabled(self) -> bool:
        return bool(self._targeted) or any(rate > 0 for rate in self.config.error_rates.values())

    def fail_after_applying(self, service: str, body_contains: str, *, times: int = 1) -> None:
        """The next ``times`` requests to ``service`` whose body contains ``body_contains`` are
        applied by moto and then answered 500, as a service can after the write landed."""
        with self._lock:
            self._targeted.append([service, body_contains.encode(), times])

    def _targeted_hit(self, service: str, environ: dict[str, Any]) -> bool:
        with self._lock:
            wanted = [t for t in self._targeted if t[0] == service]
        if not wanted:
            return False
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(data)  # the request goes on with its body intact
        with self._lock:
            for target in wanted:
                if target[2] > 0 and target[1] in data:
                    target[2] -= 1
                    if target[2] == 0:
                        self._targeted.remove(target)
                    self.stats.injected[f"{service}:InternalError:applied"] += 1
                    return True
        return False

    # ---- AWS errors ------------------------------------------------------------------------
    def middleware(self) -> Middleware:
        def wrap(app: WSGIApp) -> WSGIApp:
            def middleware(environ: dict[str, Any], start_response: Any) -> Any:
                if not self.enabled:
                    return app(environ, start_response)
                service = _service_of(environ)
                if service is None:
                    return app(environ, start_response)
                decision = ("InternalError", True) if self._targeted_hit(service, environ) else \
                    self._decide(service, environ)
                if decision is None:
                    return app(environ, start_response)
                code, applied = decision
                if applied:
                    # Let moto apply the write, throw its answer away and report a failure.
                    captured: list[str] = []
                    body = app(environ, lambda status, headers, exc_info=None: captured.append(status))
                    with contextlib.suppress(Exception):
                        for _ in body:
                            pass
                    if hasattr(body, "close"):
                        body.close()
                else:
                    _consume_body(environ)
                return _error_response(start_response, service, code, environ)

            return middleware

        return wrap

    def _decide(self, service: str, environ: dict[str, Any]) -> tuple[str, bool] | None:
        config = self.config
        with self._lock:
            self.stats.calls[service] += 1
            rate = config.error_rates.get(service, 0.0)
            if rate <= 0 or self._rng.random() >= rate:
                return None
            throttle = self._rng.random() < config.throttle_share
            applied = (not throttle and _is_write(service, environ)
                       and self._rng.random() < config.applied_share)
        code = _THROTTLE_CODES[service] if throttle else "InternalError"
        self.stats.injected[f"{service}:{code}{':applied' if applied else ''}"] += 1
        return code, applied

    # ---- workers killed --------------------------------------------------------------------
    def kill_instance(self, function_name: str, *, times: int = 1, fraction: float = 0.5) -> None:
        """The next ``times`` SQS invocations of the function handle the first ``fraction``
        of their batch, then the instance dies without answering."""
        fn = self._runtime.get(function_name)
        with self._lock:
            self._kills[fn.name] = _Kill(times, fraction)
            fn.interceptor = self._intercept

    def _intercept(self, name: str, handler: Handler, event: Any, context: Any) -> Any:
        with self._lock:
            kill = self._kills.get(name)
            records = event.get("Records") if isinstance(event, dict) else None
            armed = kill is not None and kill.remaining > 0 and bool(records)
            if armed:
                assert kill is not None
                kill.remaining -= 1
        if not armed:
            return handler(event, context)
        assert kill is not None and records is not None
        done = int(len(records) * kill.fraction)
        if done:
            handler({**event, "Records": records[:done]}, context)
        with self._lock:
            self.stats.killed_instances += 1
        raise InstanceKilled(f"instance killed after {done} of {len(records)} records")

    def drop_batches(self, function_name: str, *, times: int = 1) -> None:
        """The poller of the function "dies" after its next ``times`` invocations, before it
        deletes anything: the work is done and counted, the messages come back anyway."""
        with self._lock:
            self._drops[self._runtime.get(function_name).name] = times

    def sqs_hook(self, function_name: str, sqs: Any, queue_url: str, records: list[dict[str, Any]],
                 failed: set[str]) -> set[str]:
        """Called by a poller after an invocation with the ids it is about to leave on the
        queue; answers the ids to leave."""
        with self._lock:
            if self._drops.get(function_name, 0) > 0:
                self._drops[function_name] -= 1
                self.stats.dropped_batches += 1
                failed = {r["messageId"] for r in records}
            redelivery = self.config.redelivery_s
            if failed:
                self.stats.left_on_queue += len(failed)
        if failed and redelivery is not None:
            entries = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"], "VisibilityTimeout": redelivery}
                       for i, r in enumerate(records) if r["messageId"] in failed]
            for start in range(0, len(entries), 10):
                sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries[start:start + 10])
        return failed

    # ---- Chromium --------------------------------------------------------------------------
    def kill_chromium_mid_render(self, *, renders: int = 1) -> None:
        """SIGKILL the render engine's browser while each of its next ``renders`` renders is
        on a page (the engine is process-wide; all render instances share it)."""
        from posterflow.render.engine import get_engine

        engine = get_engine()._engine
        original = type(engine)._render_on
        remaining = [renders]

        async def render_on(slot: Any, request: Any) -> bytes:
            with self._lock:
                fire = remaining[0] > 0
                remaining[0] -= int(fire)
                if fire and remaining[0] == 0:
                    # Later renders go straight to the engine's own method again.
                    del engine._render_on
            if fire:
                with self._lock:
                    self.stats.chromium_kills += len(kill_browsers())
                # Give the kernel a moment so the page sees a dead browser, not a slow one.
                await asyncio.sleep(0.05)
            result: bytes = await original(engine, slot, request)
            return result

        engine._render_on = render_on  # type: ignore[method-assign]


def kill_browsers() -> list[int]:
    """SIGKILL every Chromium main process descending from this process; their pids."""
    pids = chromium_pids()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def chromium_pids() -> list[int]:
    """Chromium main processes (no ``--type=`` switch) descending from this process."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    mine = {os.getpid()}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                grew = True
    found = []
    for pid in sorted(mine - {os.getpid()}):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        name = Path(argv[0].decode(errors="replace")).name
        if name in ("chromium", "chrome", "headless_shell", "chrome-headless-shell") and not any(
                a.startswith(b"--type=") for a in argv):
            found.append(pid)
    return found


# ---- wire formats ------------------------------------------------------------------------------

_THROTTLE_CODES = {
    "s3": "SlowDown",
    "dynamodb": "ProvisionedThroughputExceededException",
    "dynamodbstreams": "ThrottlingException",
    "sqs": "ThrottlingException",
}
_DDB_TYPE = "com.amazonaws.dynamodb.v20120810#"


def _service_of(environ: dict[str, Any]) -> str | None:
    path = environ.get("PATH_INFO", "")
    if path.startswith("/moto-api") or _LAMBDA_PATH.match(path):
        return None
    signed = environ.get("HTTP_AUTHORIZATION", "") or environ.get("QUERY_STRING", "")
    match = _CREDENTIAL.search(signed)
    if not match:
        return None
    service = match.group(1)
    if service == "dynamodb" and environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDBStreams"):
        return "dynamodbstreams"
    return service if service in SERVICES else None


def _is_write(service: str, environ: dict[str, Any]) -> bool:
    """Writes worth replaying: never receives (a received message stays invisible for the
    visibility timeout, which would be a different fault) nor reads."""
    if service == "s3":
        return environ.get("REQUEST_METHOD") in ("PUT", "POST", "DELETE")
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if service == "dynamodb":
        return target.split(".")[-1] in ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems",
                                         "BatchWriteItem")
    if service == "sqs":
        return target.split(".")[-1] in ("SendMessage", "SendMessageBatch", "DeleteMessage",
                                         "DeleteMessageBatch")
    return False


def _consume_body(environ: dict[str, Any]) -> None:
    """Read the request body so the connection stays usable for the client's retry."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ.get("wsgi.input")
    if length and stream is not None:
        stream.read(length)
    environ["wsgi.input"] = io.BytesIO(b"")


def _error_response(start_response: Any, service: str, code: str, environ: dict[str, Any]) -> list[bytes]:
    throttled = code != "InternalError"
    message = "Injected fault: " + ("rate exceeded" if throttled else "internal error")
    headers: list[tuple[str, str]] = []
    if service == "s3":
        status = "503 Slow Down" if throttled else "500 Internal Server Error"
        body = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message>"
                "<RequestId>fault</RequestId></Error>").encode()
        headers.append(("Content-Type", "application/xml"))
    elif service.startswith("dynamodb") or environ.get("CONTENT_TYPE", "").startswith("application/x-amz-json"):
        status = "400 Bad Request" if throttled else "500 Internal Server Error"
        prefix = _DDB_TYPE if service.startswith("dynamodb") else "com.amazonaws.sqs#"
        type_name = code if throttled or service == "sqs" else "InternalServerError"
        body = json.dumps({"__type": prefix + type_name, "message": message}).encode()
        headers.append(("Content-Type", "application/x-amz-json-1.0"))
        if service == "sqs":
            headers.append(("x-amzn-query-error", f"{code};{'Sender' if throttled else 'Receiver'}"))
    else:  # the SQS query protocol
        status = "400 Bad Request" if throttled else "500 Internal Server Error"
        body = (f"<ErrorResponse><Error><Type>{'Sender' if throttled else 'Receiver'}</Type><Code>{code}</Code>"
                f"<Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>").encode()
        headers.append(("Content-Type", "text/xml"))
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [body]

