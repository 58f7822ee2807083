"""The errors the jobs library raises, each a :class:`~posterflow.errors.PosterflowError`
with its reason."""

from __future__ import annotations

from posterflow.errors import PosterflowError, Reason


class JobError(PosterflowError):
    """Base of the jobs library's errors."""


class JobNotFound(JobError):
    reason = Reason.JOB_NOT_FOUND

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class ItemNotFound(JobError):
    reason = Reason.ITEM_NOT_FOUND

    def __init__(self, job_id: str, item_id: int) -> None:
        super().__init__(f"item {item_id} of job {job_id} not found")
        self.job_id = job_id
        self.item_id = item_id


class JobStateConflict(JobError):
    """The job is not in a status the requested change is allowed from."""

    reason = Reason.JOB_STATE_CONFLICT

    def __init__(self, job_id: str, current: str | None, wanted: str) -> None:
        super().__init__(f"job {job_id} is {current}; cannot {wanted}")
        self.job_id = job_id
        self.current = current
        self.wanted = wanted


class ItemTooLarge(JobError):
    """An item's inline input would risk DynamoDB's 400 KB item limit: store it in S3 and
    pass ``input_key`` instead."""

    reason = Reason.ITEM_TOO_LARGE


class InvalidCursor(JobError):
    """A pagination cursor that this listing did not produce."""

    reason = Reason.INVALID_CURSOR


class InvalidDateRange(JobError):
    """A stats range that is not ``YYYY-MM-DD`` days, ends before it starts or is too long."""

    reason = Reason.INVALID_DATE


class StatsTimeout(JobError):
    """A stats read ran past its time budget."""

    reason = Reason.TIMEOUT
