"""The local Lambda runtime ends an invocation that runs past its function's timeout, as Lambda
does: the invocation fails with ``Sandbox.Timedout``, its instance is retired (the next call gets
a fresh one), and other requests are served meanwhile.

The functions here are built from ``lambda_timeout_handler.py`` with a 1 s timeout; its ``spin``
mode is a runaway pure-Python loop, bounded (8 s) only so that a runtime without timeouts fails
these tests instead of hanging them.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from posterflow import aws
from posterflow_local.lambda_runtime import LocalFunction, module_loader
from tests.integration.helpers import drain, make_queue, wait_for

HANDLER = Path(__file__).with_name("lambda_timeout_handler.py")
TIMEOUT_S = 1
# What Lambda answers for a timed-out invocation (the payload has no stack trace).
TIMED_OUT = re.compile(r"^RequestId: [0-9a-f-]{36} Error: Task timed out after 1\.\d\d seconds$")


def _function(cloud: Any, *, timeout_s: float = TIMEOUT_S, concurrency: int = 1) -> LocalFunction:
    """A function whose instances each import the test handler module afresh."""
    fn = LocalFunction(name=f"t-timeout-{uuid.uuid4().hex[:8]}", memory_mb=128, timeout_s=timeout_s,
                       concurrency=concurrency, environment={}, load=module_loader(HANDLER, "handler", {}))
    cloud.runtime.register(fn)
    return fn


def _invoke(name: str, event: dict[str, Any]) -> tuple[dict[str, Any], Any, float]:
    """Invoke through the Lambda API; answers (response, decoded payload, seconds taken)."""
    started = time.monotonic()
    resp = aws.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode())
    body = json.loads(resp["Payload"].read())
    return dict(resp), body, time.monotonic() - started


def _in_thread(name: str, event: dict[str, Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(_invoke(name, event)), daemon=True)
    t.start()
    return t, out


def test_runaway_invocation_times_out_and_the_next_gets_a_fresh_instance(cloud: Any) -> None:
    fn = _function(cloud)
    other = f"t-other-{uuid.uuid4().hex[:8]}"
    cloud.register_function(other, lambda event, context: {"pong": True})
    _, warm, _ = _invoke(fn.name, {"mode": "echo"})
    assert warm["calls"] == 1

    spinning, spun = _in_thread(fn.name, {"mode": "spin"})
    time.sleep(0.2)
    # Queued behind the runaway (concurrency 1): served once the runaway's instance is retired.
    queued, queued_out = _in_thread(fn.name, {"mode": "echo"})
    # Another function answers while the runaway spins.
    resp, body, took = _invoke(other, {})
    assert body == {"pong": True} and "FunctionError" not in resp and took < 0.5
    assert spinning.is_alive()

    spinning.join(timeout=TIMEOUT_S + 1.5)
    assert not spinning.is_alive(), "the runaway invocation was not ended at its timeout"
    resp, body, took = spun[0]
    assert resp["FunctionError"] == "Unhandled"
    assert set(body) == {"errorType", "errorMessage"}
    assert body["errorType"] == "Sandbox.Timedout"
    assert TIMED_OUT.match(body["errorMessage"]), body["errorMessage"]
    assert TIMEOUT_S <= took < TIMEOUT_S + 1

    # The timed-out instance is gone with its module state: the waiting call got a new one.
    queued.join(timeout=3)
    assert not queued.is_alive()
    _, fresh, _ = queued_out[0]
    assert fresh["instance"] != warm["instance"] and fresh["calls"] == 1
    # ... which stays warm for the calls after it.
    _, again, _ = _invoke(fn.name, {"mode": "echo"})
    assert again["instance"] == fresh["instance"] and again["calls"] == 2
    assert fn.timeouts == 1


def test_a_result_after_the_deadline_is_discarded(cloud: Any) -> None:
    fn = _function(cloud)
    first = fn.invoke({"mode": "echo"}).payload["instance"]

    # A long C call cannot be interrupted: the invocation ends when it returns, still failed.
    late = fn.invoke({"mode": "sleep", "sleep_s": TIMEOUT_S + 0.5})
    assert late.error_type == "Sandbox.Timedout" and late.payload is None
    assert TIMED_OUT.match(late.error_message or "")
    assert late.duration_ms >= (TIMEOUT_S + 0.5) * 1000

    # A handler that swallows the interruption and answers: its answer does not count either.
    swallowed = fn.invoke({"mode": "swallow"})
    assert swallowed.error_type == "Sandbox.Timedout" and swallowed.payload is None
    assert swallowed.duration_ms < (TIMEOUT_S + 1) * 1000

    after = fn.invoke({"mode": "echo"}).payload
    assert after["instance"] != first and after["calls"] == 1
    assert (fn.timeouts, fn.errors) == (2, 2)


def test_no_interruption_escapes_an_invocation_that_ends_at_its_deadline(cloud: Any) -> None:
    """Handlers that return right around their deadline: each call either succeeds or times out,
    and the interruption never lands in the caller after ``invoke`` returned."""
    fn = _function(cloud, timeout_s=0.05, concurrency=2)
    rng = random.Random(7)
    outcomes: Counter[str] = Counter()
    for _ in range(40):
        result = fn.invoke({"mode": "spin", "spin_s": rng.uniform(0.0, 0.2)})
        outcomes[result.error_type or "ok"] += 1
        # Python code in the caller after the call: a stray interruption would raise here.
        end = time.monotonic() + 0.02
        while time.monotonic() < end:
            pass
    assert set(outcomes) <= {"ok", "Sandbox.Timedout"} and outcomes["Sandbox.Timedout"] > 0
    assert fn.invoke({"mode": "echo"}).payload["calls"] >= 1


def test_sqs_runaway_message_is_redelivered_then_dead_lettered(cloud: Any) -> None:
    url, dlq = make_queue(visibility_s=1, max_receive=2)
    deliveries: Counter[str] = Counter()
    processed: list[str] = []
    loads: list[int] = []
    lock = threading.Lock()

    def instance() -> Any:
        loads.append(1)

        def handler(event: dict[str, Any], context: Any) -> None:
            for record in event["Records"]:
                body = record["body"]
                with lock:
                    deliveries[body] += 1
                if body == "forever":
                    end = time.monotonic() + 8
                    while time.monotonic() < end:
                        pass
                with lock:
                    processed.append(body)

        return handler

    name = f"t-timeout-sqs-{uuid.uuid4().hex[:6]}"
    cloud.register_function(name, instance, timeout_s=TIMEOUT_S, concurrency=2, factory=True)
    sqs = aws.client("sqs")
    bodies = ["forever", *(f"ok-{i}" for i in range(6))]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)])
    poller = cloud.add_sqs_source(url, name, batch_size=1, concurrency=2)
    try:
        dead = wait_for(lambda: drain(dlq), timeout=15, what="the runaway message in the DLQ")
        wait_for(lambda: len(processed) >= 6, timeout=10, what="the other messages")
    finally:
        poller.stop()
        cloud.sqs_pollers.remove(poller)
    assert [m["Body"] for m in dead] == ["forever"]
    # Received maxReceiveCount times, each attempt timed out and left the message on the queue.
    assert deliveries["forever"] == 2 and poller.stats.function_errors == 2
    # Every other message once, and none of them was lost to the runaway's instance.
    assert sorted(processed) == sorted(bodies[1:])
    assert all(deliveries[b] == 1 for b in bodies[1:])
    # Each timeout retired its instance; the replacement was imported afresh.
    assert len(loads) <= 2 + 2


def test_a_caller_timing_out_unwinds_the_call_nested_in_it(cloud: Any) -> None:
    """The API function invokes the render function in-process, on its own thread: when the
    caller times out, the nested call is unwound with it and its interrupted instance retired."""
    inner = _function(cloud, timeout_s=30)
    first = inner.invoke({"mode": "echo"}).payload
    outer = f"t-timeout-outer-{uuid.uuid4().hex[:6]}"

    def caller(event: dict[str, Any], context: Any) -> Any:
        resp = aws.client("lambda").invoke(FunctionName=inner.name, Payload=json.dumps({"mode": "spin"}).encode())
        return json.loads(resp["Payload"].read())

    cloud.register_function(outer, caller, timeout_s=TIMEOUT_S)
    resp, body, took = _invoke(outer, {})
    assert resp["FunctionError"] == "Unhandled" and body["errorType"] == "Sandbox.Timedout"
    assert took < TIMEOUT_S + 1
    # The nested call did not time out itself, but its interrupted instance is not reused.
    after = inner.invoke({"mode": "echo"}).payload
    assert after["instance"] != first["instance"] and after["calls"] == 1
    assert inner.timeouts == 0
