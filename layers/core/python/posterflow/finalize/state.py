"""Finalize's own marks on the job record: the archive key, and once-only notification flags.

Flags live in the job's ``extra`` map (``extra.<flag>``) and are claimed with a conditional
write *before* the email goes out, so a re-run of the workflow, or two executions racing,
send at most one email per kind and round.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

# The jobs library's key and expression helpers: finalize writes the same META record.
from posterflow.jobs import _ddb as d
from posterflow.jobs._expr import Expr


def _update(job_id: str, e: Expr, condition: str) -> bool:
    try:
        d.ddb().update_item(TableName=d.table(), Key=d.key(d.job_pk(job_id), d.META), **e.params(condition))
        return True
    except ClientError as exc:
        if d.is_conditional_failure(exc):
            return False
        raise


def record_archive(job_id: str, key: str, finalize_round: int) -> bool:
    """Store the archive key on the job, unless a retry has moved the job to a newer round."""
    e = Expr().set("archive_key", key).set("updated_at", d.now_iso())
    cond = (
        f"attribute_exists({e.name(d.spec().partition_key)}) AND {e.name('finalize_round')} = {e.value(finalize_round)}"
    )
    return _update(job_id, e, cond)


def claim(job_id: str, flag: str, value: dict[str, Any]) -> bool:
    """True if this call set ``extra.<flag>`` (nobody had)."""
    e = Expr().set(f"extra.{flag}", value)
    return _update(
        job_id,
        e,
        f"attribute_exists({e.name(d.spec().partition_key)}) AND attribute_not_exists({e.name('extra.' + flag)})",
    )


def put(job_id: str, flag: str, value: dict[str, Any]) -> None:
    e = Expr().set(f"extra.{flag}", value)
    _update(job_id, e, f"attribute_exists({e.name(d.spec().partition_key)})")


def release(job_id: str, flag: str) -> None:
    """Undo a claim whose work did not happen, so a retry may do it."""
    e = Expr().remove(f"extra.{flag}")
    _update(job_id, e, f"attribute_exists({e.name(d.spec().partition_key)})")
