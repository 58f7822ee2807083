"""The stream side of ``fn progress``: a batch of DynamoDB stream records → frames posted to
the connections subscribed to each job.

Per job and batch the frames are, in this order: status changes that do not end the job,
new logs, the finished items (one frame per :data:`ITEMS_PER_FRAME`, sent as
``item_completed`` and again as ``poster_completed`` for the seeds' clients), one progress
frame from the job's latest image (through the :class:`~posterflow.progress.coalesce.Gate`),
then the ending status and its ``job_completed`` / ``job_failed``, announced once per
finalize round.

Before any of that, every job's changes are appended to its SSE frame log
(:mod:`posterflow.progress.sse_log`), whether or not anyone follows the job: Server-Sent Events
streams replay from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from posterflow import aws, config, jobs
from posterflow.jobs import _ddb as d
from posterflow.progress import connections, events, sse_log, stream
from posterflow.progress.coalesce import Gate, Order
from posterflow.progress.posting import Poster

log = logging.getLogger(__name__)

ITEMS_PER_FRAME = 50
LINK_TTL_S = 24 * 3600
# Statuses after which only a status change (a retry) makes new progress frames: the final
# counters went out just before job_completed / job_failed, which must stay the last word.
_ENDED = frozenset({"completed", "completed_with_errors", "failed"})


@dataclass(frozen=True)
class Frame:
    body: dict[str, Any]
    order: Order | None = None


@dataclass
class BatchReport:
    jobs: int = 0
    frames: int = 0
    gone: list[str] = field(default_factory=list)
    logged: int = 0  # SSE frame-log entries written


def presign_get(key: str) -> str:
    return str(aws.client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": config.bucket(), "Key": key}, ExpiresIn=LINK_TTL_S))


def _chunks(items: list[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def build_frames(changes: stream.JobChanges, gate: Gate, presign: Callable[[str], str] | None) -> list[Frame]:
    job_id = changes.job_id
    job = changes.job
    ending = [s for s in changes.statuses if s.job.get("status") in events.FINAL_STATUSES]
    frames = [Frame(events.status(s.job, s.previous), events.order_key(s.job))
              for s in changes.statuses if s not in ending]
    frames += [Frame(events.log(raw)) for raw in changes.logs]

    send_progress = job is not None and (job.get("status") not in _ENDED or bool(changes.statuses))
    allowed = False
    if job is not None and send_progress:
        expires = job.get(d.spec().ttl_attribute)
        # Waits for the job's slot, so the items below go out at the same pace as progress.
        allowed = gate.acquire(job_id, events.order_key(job), expires_at=int(expires) if expires else None)

    items = [events.item(raw, presign) for raw in changes.items]
    aliases = ["item_completed"] + (["poster_completed"] if not job or job.get("kind") != "crop" else [])
    for chunk in _chunks(items, ITEMS_PER_FRAME):
        frames += [Frame(events.items_completed(job_id, chunk, alias=alias)) for alias in aliases]

    if job is not None and allowed:
        current = events.current_entity(changes.items)
        frames.append(Frame(events.progress(job, current_entity=current), events.order_key(job)))

    for change in ending:
        order = events.order_key(change.job)
        frames.append(Frame(events.status(change.job, change.previous), order))
        state = change.job.get("status")
        if state in events.COMPLETED_STATUSES or state == "failed":
            expires = change.job.get(d.spec().ttl_attribute)
            if gate.announce_once(job_id, order[0], expires_at=int(expires) if expires else None):
                body = events.job_completed(change.job, presign) if state != "failed" else events.job_failed(change.job)
                frames.append(Frame(body, order))
    return frames


def handle_records(records: Iterable[Mapping[str, Any]], *, gate: Gate | None = None, poster: Poster | None = None,
                   presign: Callable[[str], str] | None = presign_get) -> BatchReport:
    gate = gate or Gate()
    poster = poster or Poster()
    report = BatchReport()
    parsed = stream.parse(records)
    # The SSE frame log first, for every job: a failure here retries the batch before any
    # WebSocket frame went out (a retry after posting would repeat frames to clients).
    for changes in parsed:
        if changes.broadcasts:
            report.logged += sse_log.append(changes)
    for changes in parsed:
        for greeting in changes.greetings:
            poster.post(greeting.connection_id, events.connected(greeting.connection_id, greeting.snapshot),
                        connected_at=greeting.created_at)
            # Even after a failed (non-410) post: later frames must still reach the client.
            if greeting.connection_id not in poster.gone:
                connections.mark_greeted(greeting.connection_id)
        if not changes.broadcasts:
            continue
        # Connections whose greeting is still ahead in the stream get their first frames after it.
        subs = [s for s in connections.subscriptions_for(changes.job_id)
                if s.greeted and s.connection_id not in poster.gone]
        if not subs:
            continue
        report.jobs += 1
        frames = build_frames(changes, gate, presign)
        for sub in subs:
            for frame in frames:
                # A client that subscribed after this state was current has seen newer counters.
                if frame.order is not None and frame.order < sub.floor:
                    continue
                if not poster.post(sub.connection_id, frame.body, connected_at=sub.created_at):
                    if sub.connection_id in poster.gone:
                        break
                else:
                    report.frames += 1
    for connection_id in sorted(poster.gone):
        connections.remove_connection(connection_id)
        report.gone.append(connection_id)
    return report


def heartbeat_all(poster: Poster | None = None) -> int:
    """One ``heartbeat`` to every connection following an active job (a scheduled event
    calls this, keeping idle connections under API Gateway's 10-minute idle timeout)."""
    poster = poster or Poster()
    by_connection: dict[str, list[str]] = {}
    for job in jobs.list_active_jobs():
        for sub in connections.subscriptions_for(job.job_id):
            by_connection.setdefault(sub.connection_id, []).append(job.job_id)
    sent = sum(poster.post(cid, events.heartbeat(job_ids)) for cid, job_ids in by_connection.items())
    for connection_id in poster.gone:
        connections.remove_connection(connection_id)
    return sent
