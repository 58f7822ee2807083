"""DynamoDB stream records → what changed, per job, in stream order.

Only four kinds of records matter: the job (``JOB#<id>/META``), its items leaving
``pending`` (``ITEM#``), its new logs (``LOG#``) and new connections (``CONN#<id>/META``,
whose insert is the moment to greet the client: during ``$connect`` itself nothing can be
posted to it yet). Everything else (the jobs INDEX, templates, the gate's own records) is
skipped, so the handler's own writes never feed back into frames (nor do the SSE frame log's
``EVT#`` records, :mod:`posterflow.progress.sse_log`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from posterflow.jobs import _ddb as d
from posterflow.progress.connections import CONN_PREFIX


@dataclass
class StatusChange:
    previous: str | None
    job: dict[str, Any]
    seq: str = ""


@dataclass
class Greeting:
    connection_id: str
    snapshot: dict[str, Any]
    created_at: float


@dataclass
class JobChanges:
    job_id: str
    job: dict[str, Any] | None = None
    statuses: list[StatusChange] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    greetings: list[Greeting] = field(default_factory=list)
    # Stream sequence numbers of the records above (the SSE frame log keys its frames by them).
    job_seq: str = ""
    item_seqs: list[str] = field(default_factory=list)
    log_seqs: list[str] = field(default_factory=list)

    @property
    def broadcasts(self) -> bool:
        return bool(self.job is not None or self.items or self.logs or self.statuses)


def _image(record: Mapping[str, Any], which: str) -> dict[str, Any] | None:
    raw = (record.get("dynamodb") or {}).get(which)
    return d.from_item(raw) if raw else None


def _old_status(record: Mapping[str, Any]) -> tuple[bool, str | None]:
    """Whether the record has an old image, and that image's ``status`` (a string or None)."""
    raw = (record.get("dynamodb") or {}).get("OldImage")
    if not raw:
        return False, None
    value = raw.get("status")
    return True, (str(value["S"]) if isinstance(value, Mapping) and "S" in value else None)


def _keys(record: Mapping[str, Any]) -> tuple[str, str] | None:
    t = d.spec()
    keys = (record.get("dynamodb") or {}).get("Keys") or {}
    try:
        return str(keys[t.partition_key]["S"]), str(keys[t.sort_key]["S"])
    except (KeyError, TypeError):
        return None


def _relevant(pk: str, sk: str, name: Any) -> bool:
    """Whether a record with these keys can change anything :func:`parse` returns."""
    if pk.startswith(CONN_PREFIX):
        return sk == d.META and name == "INSERT"
    if not pk.startswith("JOB#"):
        return False
    return sk == d.META or sk.startswith(d.ITEM_PREFIX) or (sk.startswith(d.LOG_PREFIX) and name == "INSERT")


def sequence_number(record: Mapping[str, Any]) -> str:
    return str((record.get("dynamodb") or {}).get("SequenceNumber") or "")


def parse(records: Iterable[Mapping[str, Any]]) -> list[JobChanges]:
    """Per job (in order of first appearance), the changes a batch of records carries."""
    out: dict[str, JobChanges] = {}
    for record in records:
        keys = _keys(record)
        if keys is None:
            continue
        pk, sk = keys
        name = record.get("eventName")
        if name == "REMOVE" or not _relevant(pk, sk, name):
            # Skipped before its images are read: the frame log's own EVT# records (about
            # half of a busy stream), stats aggregates, index and gate records.
            continue
        new = _image(record, "NewImage")
        if new is None:
            continue
        if pk.startswith(CONN_PREFIX):
            if new.get("job_id"):
                changes = out.setdefault(str(new["job_id"]), JobChanges(str(new["job_id"])))
                changes.greetings.append(Greeting(str(new["connection_id"]), dict(new.get("snapshot") or {}),
                                                  float(new.get("created_at", 0.0))))
            continue
        if not pk.startswith("JOB#"):
            continue
        job_id = pk[len("JOB#"):]
        # Only the old image's status matters: read it raw instead of converting the image.
        had_old, previous = _old_status(record)
        if sk == d.META:
            changes = out.setdefault(job_id, JobChanges(job_id))
            changes.job = new
            changes.job_seq = sequence_number(record)
            if had_old and previous != new.get("status"):
                changes.statuses.append(StatusChange(previous, new, changes.job_seq))
        elif sk.startswith(d.ITEM_PREFIX):
            was_pending = had_old and previous == "pending"
            if was_pending and new.get("status") != "pending":
                changes = out.setdefault(job_id, JobChanges(job_id))
                changes.items.append(new)
                changes.item_seqs.append(sequence_number(record))
        elif sk.startswith(d.LOG_PREFIX) and name == "INSERT":
            changes = out.setdefault(job_id, JobChanges(job_id))
            changes.logs.append(new)
            changes.log_seqs.append(sequence_number(record))
    return list(out.values())
