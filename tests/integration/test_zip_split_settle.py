"""A ZIP's entries that are not photos never reach a crop worker, so the splitter finishes them
itself, with the chunk they are written in: a split that pauses or dies after a chunk leaves
none of them pending, and a split run again counts none of them twice."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import pytest

from posterflow import aws, jobs
from posterflow.split import runner
from tests import photos

# Not photos, all of them (skipped: counted, not errors), so the test needs no crop worker.
ENTRIES = [f"notes-{i}.txt" for i in range(3)] + ["__MACOSX/._team.jpg", "readme.md"]


class Killed(Exception):
    """The instance dying mid-split, as an exception out of the chunk writer."""


def _zip_state(cloud: Any) -> dict[str, Any]:
    """A crop job for a fresh ZIP and the splitter's first state for it. The key is outside
    ``uploads/``: no S3 event starts a split of it, the test drives the split itself."""
    tag = uuid.uuid4().hex[:8]
    key = f"tests/settle-{tag}.zip"
    s3 = aws.client("s3")
    s3.put_object(Bucket=cloud.refs.bucket, Key=key, Body=photos.zip_of([(f"{tag}/{n}", b"x") for n in ENTRIES]))
    head = s3.head_object(Bucket=cloud.refs.bucket, Key=key)
    job = jobs.create_job("crop", None, name=key)
    return {"job_id": job.job_id, "kind": "crop", "bucket": cloud.refs.bucket, "key": key, "etag": head["ETag"],
            "size": head["ContentLength"], "cursor": None, "sent": 0}


def _statuses(job_id: str) -> list[str]:
    items = sorted(jobs.iter_items(job_id), key=lambda i: i.item_id)
    return [str(i.status) for i in items]


@pytest.fixture
def two_per_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "CHUNK", 2)


def test_a_split_that_dies_after_its_first_chunk_leaves_no_entry_pending(
        cloud: Any, two_per_chunk: None, monkeypatch: pytest.MonkeyPatch) -> None:
    state = _zip_state(cloud)
    job_id = state["job_id"]
    real_put = jobs.put_items
    calls = {"n": 0, "kill": True}

    def put_items(put_job: str, items: Iterable[jobs.NewItem], **kwargs: Any) -> int:
        # Only this job's second chunk dies: the local cloud's other functions share the module.
        if put_job == job_id:
            calls["n"] += 1
            if calls["kill"] and calls["n"] == 2:
                raise Killed("instance killed before the second chunk")
        return real_put(put_job, items, **kwargs)

    monkeypatch.setattr(runner.jobs, "put_items", put_items)
    with pytest.raises(Killed):
        runner._run(dict(state), lambda: 10**9)
    # The first chunk's entries are finished although the run never reached its end.
    assert _statuses(job_id) == ["skipped", "skipped"]
    job = jobs.get_job(job_id)
    assert (job.total, job.processed, job.skipped) == (None, 2, 2)

    # The message comes back and the split runs again from the top: the first chunk is
    # written only where absent, finished again without counting, the rest added.
    calls["kill"] = False
    runner._run(dict(state), lambda: 10**9)
    assert _statuses(job_id) == ["skipped"] * len(ENTRIES)
    job = jobs.get_job(job_id)
    assert (job.total, job.processed, job.skipped, job.failed) == (len(ENTRIES), len(ENTRIES), len(ENTRIES), 0)


def test_a_paused_split_has_finished_its_chunk_and_resumes_without_counting_twice(
        cloud: Any, two_per_chunk: None) -> None:
    state = _zip_state(cloud)
    job_id = state["job_id"]
    # No time left after the first chunk: the split stops with its cursor saved in the state.
    assert runner._split_zip(state, lambda: 0) is False
    assert state["sent"] == 2 and state["cursor"] is not None
    assert _statuses(job_id) == ["skipped", "skipped"]
    assert jobs.get_job(job_id).processed == 2
    # The continuation picks up after the first chunk.
    assert runner._split_zip(state, lambda: 10**9) is True
    assert state["sent"] == len(ENTRIES)
    assert _statuses(job_id) == ["skipped"] * len(ENTRIES)
    job = jobs.get_job(job_id)
    assert (job.processed, job.skipped) == (len(ENTRIES), len(ENTRIES))
