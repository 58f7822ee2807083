"""boto3 clients, created once per process.

Every client takes its endpoint from one setting, ``AWS_ENDPOINT_URL`` (read by botocore
itself), so the same code talks to AWS or to the embedded local cloud. Creating a client
costs 7-77 ms, so clients are cached per process and per thread-safe boto3 session.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

from posterflow import config

_lock = threading.Lock()
_session: boto3.session.Session | None = None

_CLIENT_CONFIG = Config(
    # "standard", not "adaptive": adaptive mode shares one client-side rate limiter per client,
    # so one throttled call slowed every thread of the process (measured 4x under throttling).
    retries={"max_attempts": 8, "mode": "standard"},
    connect_timeout=5,
    read_timeout=70,
    max_pool_connections=50,
)


def session() -> boto3.session.Session:
    global _session
    with _lock:
        if _session is None:
            _session = boto3.session.Session(region_name=region())
        return _session


def region() -> str:
    return config.aws_region()


_clients: dict[str, Any] = {}


def client(service: str) -> Any:
    """A cached low-level client. Creation is serialised (boto3 sessions are not
    thread-safe); the clients themselves are safe to share between threads."""
    found = _clients.get(service)
    if found is not None:
        return found
    sess = session()
    with _lock:
        if service not in _clients:
            _clients[service] = sess.client(service, config=_CLIENT_CONFIG)  # type: ignore[call-overload]
        return _clients[service]


def reset_clients() -> None:
    """Forget cached clients (the local cloud calls this after changing the endpoint)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None
