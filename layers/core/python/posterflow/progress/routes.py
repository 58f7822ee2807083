"""The WebSocket routes of ``fn progress``: ``$connect``, messages, ``$disconnect``.

``$connect`` is refused (non-200) without a job id and that job's token; a refused connect
never reaches the client as a socket. Messages are answered by posting a frame back to the
connection (works without route responses configured): ``subscribe`` adds a job,
``ping`` returns a ``heartbeat``; anything else gets an ``error`` frame and the connection
stays open.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from posterflow import jobs, tokens
from posterflow.progress import connections, events
from posterflow.progress.posting import Poster

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 8 * 1024
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def snapshot(job: jobs.Job) -> dict[str, Any]:
    return events.job_fields(job.model_dump(mode="json"))


def _answer(status: int, message: str) -> dict[str, Any]:
    return {"statusCode": status, "body": json.dumps({"message": message})}


def connect(connection_id: str, query: Mapping[str, Any] | None) -> dict[str, Any]:
    query = query or {}
    job_id, token = query.get("job_id"), query.get("token")
    if not isinstance(job_id, str) or not isinstance(token, str) or not job_id or not token:
        return _answer(401, "connect with ?job_id=...&token=...")
    if not _JOB_ID.match(job_id) or not tokens.verify_job_token(job_id, token):
        return _answer(403, "the token does not grant access to this job")
    job = jobs.find_job(job_id)
    if job is None:
        return _answer(404, "no such job")
    connections.add_connection(connection_id, job_id, snapshot(job))
    return {"statusCode": 200}


def disconnect(connection_id: str) -> dict[str, Any]:
    connections.remove_connection(connection_id)
    return {"statusCode": 200}


def _subscribe(connection_id: str, message: Mapping[str, Any]) -> dict[str, Any]:
    job_id, token = message.get("job_id"), message.get("token")
    if not isinstance(job_id, str) or not isinstance(token, str) or not _JOB_ID.match(job_id):
        return events.error("invalid_subscribe", "subscribe needs a job_id and its token")
    if not tokens.verify_job_token(job_id, token):
        return events.error("forbidden", "the token does not grant access to this job", job_id=job_id)
    job = jobs.find_job(job_id)
    if job is None:
        return events.error("job_not_found", f"job {job_id} not found", job_id=job_id)
    current = connections.subscribed_jobs(connection_id)
    if job_id not in current and len(current) >= connections.MAX_SUBSCRIPTIONS:
        return events.error("too_many_subscriptions",
                            f"a connection may follow at most {connections.MAX_SUBSCRIPTIONS} jobs", job_id=job_id)
    snap = snapshot(job)
    if job_id not in current and not connections.add_subscription(connection_id, job_id, snap):
        return events.error("connection_gone", "the connection is closed", job_id=job_id)
    return events.subscribed(snap)


def reply_to(connection_id: str, body: str | None) -> dict[str, Any]:
    """The frame that answers one message."""
    if body is None or len(body.encode()) > MAX_MESSAGE_BYTES:
        return events.error("malformed_message", f"send a JSON object of at most {MAX_MESSAGE_BYTES} bytes")
    try:
        message = json.loads(body)
    except ValueError:
        return events.error("malformed_message", "the message is not JSON")
    if not isinstance(message, dict):
        return events.error("malformed_message", "the message must be a JSON object")
    action = message.get("action")
    if action == "subscribe":
        return _subscribe(connection_id, message)
    if action in ("ping", "heartbeat"):
        return events.heartbeat(connections.subscribed_jobs(connection_id))
    return events.error("unknown_action", "actions are subscribe and ping", action=str(action)[:64])


def message(connection_id: str, body: str | None, poster: Poster | None = None) -> dict[str, Any]:
    frame = reply_to(connection_id, body)
    (poster or Poster()).post(connection_id, frame)
    return {"statusCode": 200}


def handle(event: Mapping[str, Any], poster: Poster | None = None) -> dict[str, Any]:
    ctx = event["requestContext"]
    route = ctx.get("routeKey")
    connection_id = str(ctx["connectionId"])
    if route == "$connect":
        return connect(connection_id, event.get("queryStringParameters"))
    if route == "$disconnect":
        return disconnect(connection_id)
    return message(connection_id, event.get("body"), poster)
