"""Posting frames to WebSocket connections through the ``@connections`` management API.

A 410 (GoneException) means the client left without a ``$disconnect`` reaching us yet; the
caller deletes such connections. Right after ``$connect`` the connection may not be open yet
(API Gateway finishes the handshake after the function answers), so a connection younger
than :data:`YOUNG_S` gets a few short retries before it counts as gone.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from posterflow import aws, config

log = logging.getLogger(__name__)

YOUNG_S = 5.0
_YOUNG_RETRY_DELAYS = (0.05, 0.2, 0.5)

_clients: dict[str, Any] = {}
_lock = threading.Lock()


def management_client(endpoint: str | None = None) -> Any:
    """One client per endpoint and process (the endpoint is the WebSocket API's stage URL)."""
    url = endpoint or config.websocket_endpoint()
    if not url:
        raise config.ConfigError("the WebSocket management endpoint is not configured")
    with _lock:
        if url not in _clients:
            _clients[url] = aws.session().client("apigatewaymanagementapi", endpoint_url=url,
                                                 config=aws._CLIENT_CONFIG)
        return _clients[url]


def _is_gone(exc: ClientError) -> bool:
    err = exc.response.get("Error", {})
    return err.get("Code") == "GoneException" or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 410


class Poster:
    """Posts JSON frames; remembers which connections turned out to be gone."""

    def __init__(self, client: Any | None = None, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._sleep = sleep
        self._clock = clock
        self.gone: set[str] = set()
        self.sent = 0
        self.errors = 0

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = management_client()
        return self._client

    def post(self, connection_id: str, frame: Mapping[str, Any], *, connected_at: float | None = None) -> bool:
        """True if delivered. Failures other than 410 are logged and dropped: raising would
        make the stream retry the whole batch and repeat frames to every other client."""
        if connection_id in self.gone:
            return False
        data = json.dumps(frame, separators=(",", ":"), default=str).encode()
        young = connected_at is not None and self._clock() - connected_at < YOUNG_S
        delays = _YOUNG_RETRY_DELAYS if young else ()
        for attempt in range(len(delays) + 1):
            try:
                self.client.post_to_connection(ConnectionId=connection_id, Data=data)
                self.sent += 1
                return True
            except BotoCoreError as exc:
                # A timeout or dropped connection to the management API: this frame is lost for
                # this client (the next frame carries the newer state), the batch goes on.
                self.errors += 1
                log.warning("post to %s failed: %s", connection_id, exc)
                return False
            except ClientError as exc:
                if not _is_gone(exc):
                    self.errors += 1
                    log.warning("post to %s failed: %s", connection_id, exc)
                    return False
                if attempt < len(delays):
                    self._sleep(delays[attempt])
        self.gone.add(connection_id)
        return False
