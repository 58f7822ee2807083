"""A Lambda handler module for the local runtime's timeout tests (not a real function).

The local runtime imports this file afresh for every instance (``module_loader``), so the
module-level ``INSTANCE`` and ``CALLS`` are one instance's warm state: a fresh instance shows a
new ``INSTANCE`` and ``CALLS`` starting at 1 again.

Modes (``event["mode"]``):
- ``echo``: answer the instance's identity and call count;
- ``spin``: a pure-Python loop that prints nothing for ``spin_s`` seconds (a runaway render);
  bounded only so that a runtime without timeouts does not burn a core for ever;
- ``sleep``: one long C call (``time.sleep``), which an injected exception cannot interrupt;
- ``swallow``: spin, but catch everything (even ``BaseException``) and answer anyway.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

INSTANCE = uuid.uuid4().hex
CALLS = 0


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global CALLS
    CALLS += 1
    mode = event.get("mode", "echo")
    if mode == "spin":
        _spin(float(event.get("spin_s", 8)))
    elif mode == "sleep":
        time.sleep(float(event["sleep_s"]))
    elif mode == "swallow":
        try:
            _spin(float(event.get("spin_s", 8)))
        except BaseException:  # the point: a handler that swallows everything
            return {"swallowed": True, "instance": INSTANCE}
    return {"instance": INSTANCE, "calls": CALLS, "mode": mode}
