"""Job, item and log models and statuses (the errors the jobs library raises: posterflow.jobs.errors).

Counter and field names are the library's own; the API maps them onto the seeds' names
(``total`` → ``total_items``, ``succeeded`` → ``success_count`` ...).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from posterflow.errors import PosterflowError, Reason

JobKind = Literal["poster", "crop"]


class JobStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ItemStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


# Statuses after which the finalize workflow has nothing left to do.
FINAL_JOB_STATUSES = frozenset(
    {JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_ERRORS, JobStatus.FAILED, JobStatus.CANCELLED}
)
ACTIVE_JOB_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.PROCESSING})
TERMINAL_ITEM_STATUSES = frozenset(set(ItemStatus) - {ItemStatus.PENDING})

# Which statuses a job may move to a status from. A status is allowed to "move" to itself
# where a retried caller (finalize re-run, repeated cancel) must succeed idempotently.
ALLOWED_FROM: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.QUEUED}),
    JobStatus.PROCESSING: frozenset(
        {JobStatus.QUEUED, JobStatus.PROCESSING, JobStatus.COMPLETED_WITH_ERRORS, JobStatus.FAILED}
    ),
    JobStatus.COMPLETED: frozenset({JobStatus.QUEUED, JobStatus.PROCESSING, JobStatus.COMPLETED}),
    JobStatus.COMPLETED_WITH_ERRORS: frozenset(
        {JobStatus.QUEUED, JobStatus.PROCESSING, JobStatus.COMPLETED_WITH_ERRORS}
    ),
    JobStatus.FAILED: frozenset({JobStatus.QUEUED, JobStatus.PROCESSING, JobStatus.FAILED}),
    JobStatus.CANCELLED: frozenset({JobStatus.QUEUED, JobStatus.PROCESSING, JobStatus.CANCELLED}),
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Job(_Model):
    job_id: str
    kind: JobKind
    status: JobStatus
    name: str | None = None
    project_id: str | None = Field(None, description="the caller's project (seed 004's projectId); "
                                                    "GET /api/jobs?project_id= lists its jobs")
    total: int | None = Field(None, description="None until the splitter has counted the input")
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    template_id: str | None = None
    template_section: str | None = None
    template_version: int | None = None
    notify_email: str | None = None
    webhook_url: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    tenant: str = Field("default", description="who submitted the job (API key id); signs its webhooks")
    priority: int | None = Field(None, description="1 (most urgent) to 10, or None; decides the job's lane "
                                                  "(posterflow.jobs.lanes)")
    token: str
    error: str | None = None
    archive_key: str | None = None
    created_at: str
    updated_at: str
    started_at: str | None = None
    completed_at: str | None = None
    last_progress_at: float = Field(description="epoch seconds of the last write that moved the job")
    expires_at: int
    finalize_round: int = Field(0, description="bumped by retry_failed so finalize can run again")
    finalize_claimed_round: int | None = None
    finalize_claimed_at: float | None = None
    current_entity: str | None = Field(None, description="the entity of the latest item to land, set by the "
                                                        "counting write that landed it (jobs/counting.py)")
    extra: dict[str, Any] = Field(default_factory=dict, description="free fields set via set_status")

    @property
    def is_complete(self) -> bool:
        """Every item has landed (the trigger for the finalize workflow)."""
        return self.total is not None and self.processed >= self.total

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_JOB_STATUSES

    @property
    def percent(self) -> float:
        if not self.total:
            return 100.0 if self.total == 0 else 0.0
        return round(100.0 * self.processed / self.total, 2)

    @property
    def finalize_execution_name(self) -> str:
        return finalize_execution_name(self.job_id, self.finalize_round)

    def final_status(self) -> JobStatus:
        """The status finalize should give the job: a cancelled job stays cancelled; any failed
        item makes it completed_with_errors (DESIGN: bad input fails items, not the job)."""
        if self.status == JobStatus.CANCELLED:
            return JobStatus.CANCELLED
        return JobStatus.COMPLETED_WITH_ERRORS if self.failed > 0 else JobStatus.COMPLETED


def finalize_execution_name(job_id: str, finalize_round: int) -> str:
    """Execution names are unique per state machine for 90 days, so each retry round of a job
    gets its own name; round 0 is the plain job id, as docs/architecture.md says."""
    return job_id if finalize_round == 0 else f"{job_id}-retry{finalize_round}"


class Item(_Model):
    job_id: str
    item_id: int
    entity_id: str | None = None
    status: ItemStatus
    input: dict[str, Any] | None = None
    input_key: str | None = Field(None, description="S3 key of an input too large to keep inline")
    output_key: str | None = None
    error: str | None = Field(None, description="why the item failed (or was skipped, cancelled), for people")
    error_code: str | None = Field(None, description="the fixed reason code of error (posterflow.errors.Reason)")
    timings: dict[str, float] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)
    attempts: int = 0
    created_at: str
    updated_at: str
    finished_at: str | None = None

    @property
    def generation_time_ms(self) -> int | None:
        total = self.timings.get("total_ms")
        return None if total is None else round(total)


class NewItem(_Model):
    """What the API or the splitter knows about an item before it is processed."""

    item_id: int = Field(ge=0)
    entity_id: str | None = None
    input: dict[str, Any] | None = None
    input_key: str | None = None


class JobLog(_Model):
    job_id: str
    log_id: str = Field(description="the sort key, usable as a stable id")
    level: str
    message: str
    details: dict[str, Any] | None = None
    created_at: str


class FinishResult(StrEnum):
    FINISHED = "finished"
    ALREADY_DONE = "already_done"


class FinishOutcome(_Model):
    result: FinishResult
    item_status: ItemStatus = Field(description="the item's status after the call")
    job: Job | None = Field(None, description="the job read after the write (None when already done)")
    finalize_started: bool = Field(False, description="this call started the finalize execution")

    @property
    def counted(self) -> bool:
        return self.result == FinishResult.FINISHED


class ItemOutcome(_Model):
    """One item's result, as a worker records it (see :func:`posterflow.jobs.finish_items`)."""

    item_id: int
    status: ItemStatus
    output_key: str | None = None
    error: str | None = Field(None, description="the message alone, for people")
    error_code: Reason | None = Field(None, description="the reason; required with an error")
    timings: dict[str, float] | None = None
    extra: dict[str, Any] | None = None
    entity_id: str | None = Field(None, description="the item's entity when the worker knows it: the "
                                                    "counting write stores it as the job's current_entity")

    @model_validator(mode="after")
    def _error_has_code(self) -> ItemOutcome:
        if self.error is not None and self.error_code is None:
            raise ValueError("an item error is recorded with its reason (error_code)")
        return self

    @classmethod
    def failure(cls, item_id: int, exc: PosterflowError,
                status: ItemStatus = ItemStatus.FAILED) -> ItemOutcome:
        """The outcome of an item that failed (or was skipped) with ``exc``: its reason and message."""
        return cls(item_id=item_id, status=status, error=exc.message, error_code=exc.reason)


class TotalSet(_Model):
    job: Job
    finalize_started: bool = False


class CancelOutcome(_Model):
    job: Job
    items_cancelled: int
    items_remaining: bool = Field(description="pending items left for workers (deadline reached)")
