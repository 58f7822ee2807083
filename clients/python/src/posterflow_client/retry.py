"""When and how long the client waits before sending a request again.

A request is retried on a connection error, a timeout, 429 and 502/503/504 (and 500), with
exponential backoff and full jitter, a bounded number of attempts, honouring ``Retry-After``.
Which requests may be retried depends on whether a second copy could do something twice:

- *safe* requests (GETs, and every job-creating POST, which carries an ``Idempotency-Key``
  the server deduplicates on) are retried on all of the above, and on 409
  ``idempotency_in_progress`` (the first copy is still running: its answer will come);
- *unsafe* ones (a template upload makes a new version each time) only when the request
  surely never reached the server (the connection failed) or the server said 429.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Errors raised before a byte of the request left: retrying cannot duplicate anything.
NOT_SENT_ERRORS: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` counts the first try; delay before retry ``n`` (1-based) is uniform in
    ``[0, min(max_delay_s, base_delay_s * 2 ** (n - 1))]`` unless the answer had ``Retry-After``
    (then that, at most ``max_retry_after_s``)."""

    max_attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 60.0
    statuses: frozenset[int] = RETRY_STATUSES
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    random: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def backoff(self, retry_number: int) -> float:
        """The jittered delay before retry ``retry_number`` (1 for the first retry)."""
        cap = min(self.max_delay_s, self.base_delay_s * (2 ** (retry_number - 1)))
        return cap * self.random()

    def delay(self, retry_number: int, response: httpx.Response | None) -> float:
        after = retry_after_s(response) if response is not None else None
        if after is not None:
            return min(after, self.max_retry_after_s)
        return self.backoff(retry_number)

    def should_retry_status(self, response: httpx.Response, *, safe: bool) -> bool:
        if response.status_code == 429:
            return True
        if not safe:
            return False
        if response.status_code == 409:
            return _error_code(response) == "idempotency_in_progress"
        return response.status_code in self.statuses

    def should_retry_error(self, exc: Exception, *, safe: bool) -> bool:
        if isinstance(exc, httpx.UnsupportedProtocol):
            return False  # a bad URL stays bad
        if isinstance(exc, NOT_SENT_ERRORS):
            return True
        return safe and isinstance(exc, httpx.TransportError)


NO_RETRIES = RetryPolicy(max_attempts=1)


def retry_after_s(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), None if absent or unreadable."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code")) if isinstance(error, dict) else None
