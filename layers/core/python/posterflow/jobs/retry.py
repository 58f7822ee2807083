"""What ``POST /api/jobs/{id}/retry`` sends again: one queue message per failed item, rebuilt
from what the item recorded when it was created.

Poster items keep their poster spec; crop items keep their photo source (a ZIP entry with its
archive's bucket, key and ETag, an S3 key, or a URL) under ``photo``, and the job keeps its
crop options in ``metadata.crop_options``. An item with nothing to send again (a CSV row that
could not be read, a ZIP entry that is not a photo) stays failed with its reason: running it
again could only fail the same way. The messages go to the queue of the job's lane, as the
first time (:mod:`posterflow.jobs.lanes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from posterflow import jobs
from posterflow.jobs import lanes


@dataclass(frozen=True)
class RetryPlan:
    queue: str
    job: jobs.Job

    def message(self, item: jobs.Item) -> dict[str, Any] | None:
        data = item.input or {}
        if self.work == "render":
            return {"job_id": self.job.job_id, "item_id": item.item_id, "spec": data} if "template_id" in data else None
        photo = data.get("photo")
        if not isinstance(photo, dict):
            return None
        return {"job_id": self.job.job_id, "item_id": item.item_id, **photo,
                "options": self.job.metadata.get("crop_options") or {}}

    def retryable(self, item: jobs.Item) -> bool:
        return self.message(item) is not None

    def messages(self, items: Iterable[jobs.Item]) -> Iterator[dict[str, Any]]:
        for item in items:
            message = self.message(item)
            if message is not None:
                yield message

    @property
    def work(self) -> str:
        """``render`` or ``crop``: what the messages ask for, whichever lane carries them."""
        return work_of(self.job)


def work_of(job: jobs.Job) -> str:
    return "crop" if job.kind == "crop" else "render"


def plan_for(job: jobs.Job) -> RetryPlan:
    """What a retry of ``job`` sends, and to which queue: its work's queue in the job's lane."""
    return RetryPlan(queue=lanes.queue_key(work_of(job), job.priority), job=job)
