"""Reading a job's Server-Sent Events stream (``GET /api/batch/jobs/{id}/stream``).

The parser follows the HTML standard's event-stream rules: ``event:``, ``data:`` (several
lines joined with ``\\n``), ``id:`` (the last one seen is sent back as ``Last-Event-ID`` on a
reconnect; one holding NUL is ignored), ``retry:`` (digits only: the reconnection delay in ms),
``:`` comments ignored, an event dispatched at a blank line and a half-received one dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from posterflow_client.models import StreamEvent


@dataclass
class EventParser:
    """Lines in, :class:`StreamEvent` out; ``last_event_id`` and ``retry_ms`` persist across
    events (and, kept by the caller, across connections)."""

    last_event_id: str | None = None
    retry_ms: int | None = None
    _event: str = ""
    _data: list[str] = field(default_factory=list)

    def feed(self, lines: Iterable[str]) -> Iterator[StreamEvent]:
        for line in lines:
            event = self.line(line)
            if event is not None:
                yield event

    def line(self, line: str) -> StreamEvent | None:
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        return None

    def reset(self) -> None:
        """Drop a half-received event (the connection ended before its blank line)."""
        self._event, self._data = "", []

    def _dispatch(self) -> StreamEvent | None:
        event, data = self._event or "message", self._data
        self.reset()
        if not data:
            return None
        raw = "\n".join(data)
        try:
            parsed: object = json.loads(raw)
        except ValueError:
            parsed = raw
        return StreamEvent(event=event, id=self.last_event_id, data=parsed, raw=raw)
