"""``posterflow watch JOB``: a terminal progress bar fed by the job's WebSocket.

The socket gives the live counters; the REST API gives the final job (and is the fallback
when the socket cannot be opened or drops, so a watch always ends with the job's state).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.parse
import urllib.request
from typing import Any, TextIO

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

FINAL = frozenset({"completed", "completed_with_errors", "failed", "cancelled"})
ENDING_EVENTS = frozenset({"job_completed", "job_failed"})
COUNTER_EVENTS = frozenset({"connected", "subscribed", "progress", "status", "job_completed", "job_failed"})
BAR_WIDTH = 30
# How long the socket may stay silent before the REST API is asked (and a ping is sent).
QUIET_S = 5.0


def socket_url(ws_url: str, job_id: str, token: str) -> str:
    """``ws_url`` as the job's ``websocket_url`` gives it, or the bare API URL."""
    if "token=" in ws_url:
        return ws_url
    query = urllib.parse.urlencode({"job_id": job_id, "token": token})
    return f"{ws_url.rstrip('/')}/?{query}"


def fetch_job(api_url: str, job_id: str) -> dict[str, Any]:
    url = f"{api_url.rstrip('/')}/api/jobs/{urllib.parse.quote(job_id)}?limit=1"
    with urllib.request.urlopen(url, timeout=30) as resp:
        job = json.loads(resp.read())
    job.pop("results", None)
    job.pop("next", None)
    return dict(job)


def _fmt_eta(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "--"
    s = round(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")


class Bar:
    """Redraws in place on a terminal; elsewhere prints a line per 10% step or status change."""

    def __init__(self, out: TextIO, job_id: str) -> None:
        self.out = out
        self.job_id = job_id
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self._last_line: tuple[str, int] | None = None

    def line(self, state: dict[str, Any]) -> str:
        total = state.get("total") if state.get("total") is not None else state.get("total_items")
        processed = int(state.get("processed", state.get("processed_items", 0)) or 0)
        pct = float(state.get("percent", state.get("progress", 0.0)) or 0.0)
        filled = int(BAR_WIDTH * min(pct, 100.0) / 100)
        rate = state.get("items_per_s")
        return (f"{self.job_id[:12]} [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {pct:5.1f}% "
                f"{processed}/{total if total is not None else '?'} "
                f"ok {state.get('succeeded', state.get('success_count', 0))} "
                f"failed {state.get('failed', state.get('failure_count', 0))} "
                f"{(f'{rate:.1f}/s' if isinstance(rate, int | float) else '')} "
                f"ETA {_fmt_eta(state.get('eta_s'))} {state.get('status', '')}").rstrip()

    def draw(self, state: dict[str, Any]) -> None:
        text = self.line(state)
        if self.tty:
            self.out.write("\r\x1b[2K" + text)
            self.out.flush()
            return
        step = (str(state.get("status")), int(float(state.get("percent", state.get("progress", 0)) or 0) // 10))
        if step != self._last_line:
            self._last_line = step
            self.out.write(text + "\n")
            self.out.flush()

    def finish(self, job: dict[str, Any]) -> None:
        self.draw(job)
        if self.tty:
            self.out.write("\n")
        message = f"job {self.job_id} {job.get('status')}"
        if job.get("error"):
            message += f": {job['error']}"
        if job.get("archive_url"):
            message += f"\nresults: {job['archive_url']}"
        self.out.write(message + "\n")
        self.out.flush()


def _follow_socket(ws: ClientConnection, bar: Bar, api_url: str, job_id: str, deadline: float | None) -> None:
    """Return when the job has ended (by the socket or, while it is quiet, by the REST API)."""
    while deadline is None or time.monotonic() < deadline:
        try:
            frame = json.loads(ws.recv(timeout=QUIET_S))
        except TimeoutError:
            if fetch_job(api_url, job_id).get("status") in FINAL:
                return
            ws.send(json.dumps({"action": "ping"}))
            continue
        if not isinstance(frame, dict) or frame.get("job_id") not in (job_id, None):
            continue
        event = frame.get("event")
        if event in COUNTER_EVENTS:
            bar.draw(frame)
        if event in ENDING_EVENTS or (event in COUNTER_EVENTS and frame.get("status") in FINAL):
            return
    raise TimeoutError(f"job {job_id} did not end in time")


def _poll(bar: Bar, api_url: str, job_id: str, deadline: float | None) -> None:
    while deadline is None or time.monotonic() < deadline:
        job = fetch_job(api_url, job_id)
        bar.draw(job)
        if job.get("status") in FINAL:
            return
        time.sleep(1.0)
    raise TimeoutError(f"job {job_id} did not end in time")


def watch(api_url: str, ws_url: str, job_id: str, token: str, out: TextIO = sys.stderr, *,
          timeout: float | None = None) -> dict[str, Any]:
    """Draw the job's progress until it ends; return the final job as the REST API has it."""
    bar = Bar(out, job_id)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        with connect(socket_url(ws_url, job_id, token), open_timeout=10) as ws:
            _follow_socket(ws, bar, api_url, job_id, deadline)
    except (OSError, InvalidHandshake, InvalidURI, ConnectionClosed) as exc:
        # A refused or dropped socket still leaves the REST API to follow the job with.
        out.write(f"(live progress unavailable: {exc}; polling the API)\n")
        _poll(bar, api_url, job_id, deadline)
    job = fetch_job(api_url, job_id)
    # The socket can announce the end a moment before a re-read would show it everywhere.
    while job.get("status") not in FINAL and (deadline is None or time.monotonic() < deadline):
        time.sleep(0.5)
        job = fetch_job(api_url, job_id)
    bar.finish(job)
    return job
