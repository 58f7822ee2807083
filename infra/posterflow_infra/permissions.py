"""Who may touch what: one table, so least privilege is reviewable at a glance.

Event-source mappings grant their own consume permissions (receive/delete on the queue, stream
reads) and are not repeated here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Access:
    bucket: bool = False  # read + put (no delete: outputs expire through the lifecycle rules)
    table: bool = False  # read/write items (jobs, items, counters, connections)
    send_to: tuple[str, ...] = ()  # queue keys
    invoke: tuple[str, ...] = ()  # function keys, synchronous Invoke
    start_workflows: tuple[str, ...] = ()  # state machine keys
    send_email: bool = False
    manage_connections: bool = False  # WebSocket @connections
    signing_secret: bool = False  # reads the signing secret (signs or verifies tokens, webhooks)
    bucket_read: bool = False  # read only (presigned GETs of outputs and archives)
    table_read: bool = False  # read only (jobs, the SSE frame log)
    read_api_keys: bool = False  # apigateway:GET on /apikeys and /usageplans (checks a caller's key)
    notes: str = field(default="", compare=False)


# Both priority lanes of the render and crop work (posterflow.jobs.lanes).
WORK_QUEUES = ("render", "render_urgent", "crop", "crop_urgent")

ACCESS: dict[str, Access] = {
    "api": Access(bucket=True, table=True, send_to=("split", *WORK_QUEUES), invoke=("render",),
                  start_workflows=("finalize",), signing_secret=True,
                  notes="creates jobs (job tokens), enqueues batches, presigns uploads/downloads, renders single"
                        " posters synchronously, restarts finalize on retry, checks download links, tells a"
                        " tenant its webhook secret"),
    "splitter": Access(bucket=True, table=True, send_to=("split", *WORK_QUEUES), start_workflows=("finalize",),
                       signing_secret=True,
                       notes="reads uploads, creates the jobs of S3 drops (job tokens), fans out one message per"
                             " item, queues its own continuation"),
    "render": Access(bucket=True, table=True, start_workflows=("finalize",)),
    "crop": Access(bucket=True, table=True, start_workflows=("finalize",)),
    "progress": Access(bucket=True, table=True, manage_connections=True, signing_secret=True,
                       notes="checks the job token on $connect, presigns thumbnail and archive links in the"
                             " frames it pushes"),
    "stream": Access(bucket_read=True, table_read=True, signing_secret=True, read_api_keys=True,
                     notes="reads a job and its SSE frame log, checks the job token or the caller's API key (the"
                           " stream routes are reached without API Gateway's key check: EventSource cannot send"
                           " headers), presigns poster and archive links in the frames"),
    "finalize": Access(bucket=True, table=True, send_email=True, signing_secret=True,
                       notes="signs the emailed download links and the webhooks"),
    "dlq": Access(table=True, start_workflows=("finalize",),
                  notes="fails exhausted items; may be the one that completes the job"),
}
