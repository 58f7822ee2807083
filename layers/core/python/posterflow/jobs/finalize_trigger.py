"""The finalize trigger: once ``processed == total`` the caller that wins a conditional
*claim* on the job (``finalize_claimed_round``) starts the finalize execution; the finalize
workflow then completes the job.

The claim makes "this call started it" exact even on AWS, where a second StartExecution with
the same name and input of a running execution also succeeds. A caller that finds a claim
older than :data:`FINALIZE_HEAL_AFTER_S` on a job still not final starts the execution again
(the name makes that harmless), which heals a worker that died between claim and start.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from typing import Any

from botocore.exceptions import ClientError

from posterflow import aws, config
from posterflow.jobs import _ddb as d
from posterflow.jobs import stats
from posterflow.jobs._expr import Expr
from posterflow.jobs.errors import (
    JobStateConflict,
)
from posterflow.jobs.models import (
    ALLOWED_FROM,
    Job,
    JobStatus,
)
from posterflow.jobs.store import (
    get_job,
    set_status,
)

FINALIZE_HEAL_AFTER_S = 120.0
_DONE_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_ERRORS, JobStatus.FAILED})



def check_completion(job_id: str) -> bool:
    """Start finalize if the job's items have all landed and nobody has; True if this call
    started it. Safe to call any time (sweep, after set_total, an admin action)."""
    return _maybe_start_finalize(get_job(job_id))


def _maybe_start_finalize(job: Job) -> bool:
    if not job.is_complete or job.status in _DONE_STATUSES:
        return False
    if job.finalize_claimed_round == job.finalize_round:
        claimed_at = job.finalize_claimed_at or 0.0
        if time.time() - claimed_at > FINALIZE_HEAL_AFTER_S:
            _start_execution(job)
        return False
    if not _claim_finalize(job):
        return False
    try:
        return _start_execution(job)
    except Exception:
        _release_claim(job)
        raise


def _claim_finalize(job: Job) -> bool:
    # The token tells this claim from a sibling's: when DynamoDB answers a 500 after the write
    # landed, the SDK's retry finds the claim taken, and only the token says it was ours (else
    # nobody would start the execution until the heal, minutes later).
    token = uuid.uuid4().hex
    e = Expr().set("finalize_claimed_round", job.finalize_round).set("finalize_claimed_at", time.time())
    e.set("finalize_claim_token", token)
    claimed = e.name("finalize_claimed_round")
    round_value = e.value(job.finalize_round)
    condition = (
        f"(attribute_not_exists({claimed}) OR {claimed} <> {round_value}) "
        f"AND {e.name('finalize_round')} = {round_value} AND {e.name('processed')} = {e.name('total')}"
    )
    try:
        d.ddb().update_item(TableName=d.table(), Key=d.key(d.job_pk(job.job_id), d.META),
                            ReturnValuesOnConditionCheckFailure="ALL_OLD", **e.params(condition))
        return True
    except ClientError as exc:
        if d.is_conditional_failure(exc):
            current: dict[str, Any] = dict(exc.response.get("Item") or {})  # type: ignore[call-overload]
            return bool(current.get("finalize_claim_token", {}).get("S") == token)
        raise


def _release_claim(job: Job) -> None:
    e = Expr().remove("finalize_claimed_round").remove("finalize_claimed_at")
    condition = f"{e.name('finalize_claimed_round')} = {e.value(job.finalize_round)}"
    # Best effort: a claim left behind is healed after FINALIZE_HEAL_AFTER_S.
    with contextlib.suppress(ClientError):
        d.ddb().update_item(TableName=d.table(), Key=d.key(d.job_pk(job.job_id), d.META), **e.params(condition))


def _start_execution(job: Job) -> bool:
    """True if this call started the execution; False if it already existed."""
    # merge_pdf: the state machine's first Choice skips the MergePdf task for other jobs
    # (api/batch_modes.mark_merge_pdf sets the flag before any item is queued).
    payload = {"job_id": job.job_id, "finalize_round": job.finalize_round,
               "merge_pdf": bool(job.extra.get("merge_pdf"))}
    try:
        aws.client("stepfunctions").start_execution(
            stateMachineArn=config.state_machine_arn("finalize"),
            name=job.finalize_execution_name,
            input=json.dumps(payload),
        )
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            return False
        raise


def complete_job(
    job_id: str, *, finalize_round: int | None = None, archive_key: str | None = None, **fields: Any
) -> Job:
    """Finalize's last step: give the job its final status from its counters
    (:meth:`Job.final_status`). Idempotent for a re-run; refuses (JobStateConflict) while items
    are outstanding or when a retry has started a newer round than ``finalize_round``."""
    job = get_job(job_id)
    if finalize_round is not None and job.finalize_round != finalize_round:
        raise JobStateConflict(
            job_id, job.status, f"complete round {finalize_round} (the job is on round {job.finalize_round})"
        )
    if job.status in _DONE_STATUSES:
        stats.count_completion_safely(job)  # heals a completion whose count a crash lost (else a no-op)
        return job
    if not job.is_complete:
        raise JobStateConflict(job_id, job.status, f"complete with {job.processed} of {job.total} items processed")
    target = job.final_status()
    # The counters read above must still hold when the status is written.
    guard = (
        "#processed = #total AND #failed = :xf AND #finalize_round = :xr",
        {"#processed": "processed", "#total": "total", "#failed": "failed", "#finalize_round": "finalize_round"},
        {":xf": job.failed, ":xr": job.finalize_round},
    )
    allowed = [JobStatus.CANCELLED] if target == JobStatus.CANCELLED else [*ALLOWED_FROM[target]]
    if archive_key is not None:
        fields["archive_key"] = archive_key
    done = set_status(job_id, target, allowed_from=allowed, extra_condition=guard, **fields)
    # The job's first completion counts once in the stats (jobs/stats.py: a flag on the job).
    stats.count_completion_safely(done)
    return done


