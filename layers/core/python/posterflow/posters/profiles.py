"""Profile look-ups for bulk posters by user identifier (seed 000's ``bulkMethod: "html"``).

The profile source is one operator-configured URL template, ``POSTERFLOW_PROFILE_URL_TEMPLATE``
(``https://api.example.com/users/{id}``). Callers pass identifiers, never URLs: each identifier
is percent-encoded into the single ``{id}`` slot, so ``../admin`` cannot leave the source's
path. The request still goes through the render network policy (the source's own prefix is
the allow-list rule), so a source whose name resolves to the metadata service or a private
address is refused; loopback is allowed only with ``POSTERFLOW_PROFILE_ALLOW_LOOPBACK=1``
(tests and the local cloud's demo sources).

A look-up that fails (refused, 404, not JSON, timed out) is a :class:`ProfileError` with a
reason: the caller fails that item with it, the others go on.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any
from urllib.parse import quote

from posterflow import config
from posterflow.net import fetch
from posterflow.net.policy import AllowRule, NetPolicy, PolicyError
from posterflow.posters.errors import NotConfigured as NotConfigured
from posterflow.posters.errors import ProfileError as ProfileError

ENV_URL_TEMPLATE = config.PROFILE_URL_TEMPLATE.name
ENV_ALLOW_LOOPBACK = config.PROFILE_ALLOW_LOOPBACK.name
MAX_IDENTIFIER_CHARS = 200
# A profile answer wrapped in one of these keys is unwrapped ({"data": {...}}).
_WRAPPERS = ("data", "profile", "user", "result")
_SLOT = "{id}"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def parse_identifiers(value: str | Sequence[str]) -> list[str]:
    """Seed 000 sends ``"user1,user2"``; a list works too. Blank entries are dropped, the
    order is kept and duplicates stay (each is an item the caller asked for)."""
    parts = re.split(r"[,\n]", value) if isinstance(value, str) else [str(v) for v in value]
    return [p.strip() for p in parts if p.strip()]


class ProfileSource:
    def __init__(self, url_template: str, *, allow_loopback: bool = False, timeout_s: float = 10.0) -> None:
        if url_template.count(_SLOT) != 1:
            raise NotConfigured(f"{ENV_URL_TEMPLATE} must contain {_SLOT} exactly once, got {url_template!r}")
        # The allow rule is the template's fixed part before the slot (without any query):
        # identifiers are encoded into the slot and redirects are re-checked, so nothing
        # outside that prefix is ever fetched.
        prefix = url_template.split(_SLOT, 1)[0].split("?", 1)[0]
        try:
            rule = AllowRule.parse(prefix)
        except PolicyError as exc:
            raise NotConfigured(f"{ENV_URL_TEMPLATE} is not a usable http(s) URL template: {exc}") from None
        if allow_loopback and rule.host in _LOOPBACK_HOSTS:
            # The opt-in admits a loopback source only; private ranges stay refused.
            rule = AllowRule.parse(prefix, allow_private=True)
        self.url_template = url_template
        self.policy = NetPolicy([rule])
        self.timeout_s = timeout_s

    @classmethod
    def from_env(cls) -> ProfileSource:
        template = config.profile_url_template()
        if not template:
            raise NotConfigured(f"no profile source is configured ({ENV_URL_TEMPLATE} is not set)")
        return cls(template, allow_loopback=config.profile_allow_loopback())

    def url_for(self, identifier: str) -> str:
        return self.url_template.replace(_SLOT, quote(identifier, safe=""))

    def fetch(self, identifier: str) -> dict[str, Any]:
        """The profile as flat template data (``username`` always set to the identifier)."""
        if len(identifier) > MAX_IDENTIFIER_CHARS:
            raise ProfileError(identifier[:40] + "…", f"identifier longer than {MAX_IDENTIFIER_CHARS} characters")
        try:
            raw = fetch.fetch_url(self.url_for(identifier), self.policy, what="profile", timeout_s=self.timeout_s)
        except fetch.FetchError as exc:
            raise ProfileError(identifier, exc.message) from None
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ProfileError(identifier, "profile source did not answer JSON") from None
        return to_template_data(identifier, data)


def to_template_data(identifier: str, data: Any) -> dict[str, Any]:
    """Flatten a profile answer into placeholder values: top-level scalars and lists as they
    are, one nested object level as ``parent_child``."""
    if not isinstance(data, dict):
        raise ProfileError(identifier, "profile source answered JSON that is not an object")
    for key in _WRAPPERS:
        if len(data) == 1 and isinstance(data.get(key), dict):
            data = data[key]
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            for sub, inner in value.items():
                if not isinstance(inner, dict):
                    out.setdefault(f"{key}_{sub}", inner)
        elif value is not None:
            out[str(key)] = value
    out.setdefault("username", identifier)
    out.setdefault("user_identifier", identifier)
    return out


def fetch_many(source: ProfileSource, identifiers: Sequence[str], *, budget_s: float,
               concurrency: int = 8) -> list[dict[str, Any] | ProfileError]:
    """Look up every identifier in parallel within ``budget_s``; a slot is the profile or the
    error for it (a look-up still running when the budget ends is an error, not a wait)."""
    results: list[dict[str, Any] | ProfileError] = [
        ProfileError(i, f"profile look-up did not finish within {budget_s:.0f} s") for i in identifiers]
    if not identifiers:
        return results
    pool = ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(identifiers))), thread_name_prefix="profile")
    deadline = time.monotonic() + budget_s
    try:
        futures = {pool.submit(source.fetch, ident): n for n, ident in enumerate(identifiers)}
        wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        for future, n in futures.items():
            if not future.done():
                future.cancel()
                continue
            exc = future.exception()
            if exc is None:
                results[n] = future.result()
            elif isinstance(exc, ProfileError):
                results[n] = exc
            else:
                results[n] = ProfileError(identifiers[n], f"profile look-up failed: {exc}")
    finally:
        # Do not wait for stragglers: their slots already say they timed out.
        pool.shutdown(wait=False, cancel_futures=True)
    return results
