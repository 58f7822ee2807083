"""Every row of an uploaded CSV is accounted for: a row that cannot be read fails as its own
item with its line and reason, the others go on, and ``total_items`` is the file's row count.
A file refused as a whole fails the job with the reason."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from posterflow import aws, jobs
from posterflow.split import runner as splitter
from tests.integration.helpers import upload_card_template, wait_for

ONE_MB = 1024 * 1024


@pytest.fixture(scope="module")
def template_id(cloud: Any) -> str:
    return upload_card_template(cloud, "rows", "<div style='font:18px sans-serif'>{{ username }} {{ score }}</div>",
                                name="Rows card")


def _drop(cloud: Any, template_id: str, data: bytes, name: str = "rows") -> str:
    """Drop a CSV under ``uploads/`` with its template in the object metadata; returns the key."""
    key = f"uploads/{name}-{uuid.uuid4().hex[:8]}.csv"
    aws.client("s3").put_object(Bucket=cloud.refs.bucket, Key=key, Body=data, Metadata={"template-id": template_id})
    return key


def _final(key: str, timeout: float = 180) -> jobs.Job:
    """The job the upload became, once final."""
    def done() -> jobs.Job | None:
        found, _ = jobs.list_jobs(limit=200)
        job = next((j for j in found if j.metadata.get("upload") == key), None)
        return jobs.get_job(job.job_id) if job is not None and job.is_final else None

    found: jobs.Job = wait_for(done, timeout=timeout, interval=0.5, what=f"job for {key} to finish")
    return found


def _good(start: int, count: int) -> bytes:
    return b"".join(f"user{i},{i}\n".encode() for i in range(start, start + count))


def _failed(job_id: str) -> dict[int, str]:
    return {i.item_id: i.error or "" for i in jobs.iter_items(job_id) if i.status == "failed"}


def test_an_over_long_line_fails_alone_and_the_rows_after_it_go_on(cloud: Any, template_id: str) -> None:
    # The probe: 150 good rows, one line over the 1 MiB line limit, 10 more good rows.
    data = b"username,score\n" + _good(0, 150) + b"huge," + b"x" * (ONE_MB + 10) + b"\n" + _good(150, 10)
    job = _final(_drop(cloud, template_id, data))
    assert job.error is None
    assert (job.status, job.total) == ("completed_with_errors", 161)
    assert (job.succeeded, job.failed) == (160, 1)
    failed = _failed(job.job_id)
    assert list(failed) == [150]
    assert "line 152" in failed[150] and "longer than" in failed[150]


def test_every_kind_of_bad_row_fails_alone_with_its_line(cloud: Any, template_id: str) -> None:
    rows = [
        b"\xef\xbb\xbfUsername,Score\r\n",  # BOM and CRLF line ends
        b"alice,1\r\n",  # line 2
        b"\r\n",  # line 3: blank, not a row
        b'"carol\r\nsmith",2\r\n',  # lines 4-5: a quoted newline is data
        b"dave,3,extra\r\n",  # line 6: an extra column
        b'"open,4\r\n',  # line 7: a quote never closed...
        b"erin,5\r\n",  # line 8: ...does not swallow the rows after it
        b"big," + b"y" * 70_000 + b"\r\n",  # line 9: over an item's size limit
        # Past the reader's 64 KiB sample, which fixed the encoding (UTF-8) and found no NUL:
        b"caf\xe9,6\r\n",  # line 10: not UTF-8
        b"ev\x00il,7\r\n",  # line 11: a NUL byte
        b"frank\r\n",  # line 12: no score, which the template needs
        b"gina,8\r\n",  # line 13
    ]
    job = _final(_drop(cloud, template_id, b"".join(rows), "bad"))
    assert job.error is None and job.status == "completed_with_errors"
    assert (job.total, job.succeeded, job.failed) == (10, 4, 6)
    failed = _failed(job.job_id)
    expected = {2: (6, "cells but the header"), 3: (7, "bad quoting"), 5: (9, "over the limit"),
                6: (10, "invalid UTF-8"), 7: (11, "NUL"), 8: (12, "no value for score")}
    assert sorted(failed) == sorted(expected)
    for item_id, (line, words) in expected.items():
        assert failed[item_id].startswith(f"line {line}: ") and words in failed[item_id], failed[item_id]
    carol = jobs.get_item(job.job_id, 1)
    assert carol.status == "succeeded" and carol.input and carol.input["custom_data"]["username"] == "carol\r\nsmith"


def test_failed_rows_count_once_across_many_resumes(cloud: Any, template_id: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Three rows per chunk and never enough time left: the split pauses after every chunk and
    # continues from its checkpoint, with bad rows on either side of the chunk borders.
    monkeypatch.setattr(splitter, "CHUNK", 3)
    monkeypatch.setattr(splitter, "RESERVE_MS", 10**9)
    bad = {2, 3, 6, 10, 11}
    body = b"".join(b"x," + b"z" * (ONE_MB + 1) + b"\n" if i in bad else f"u{i},{i}\n".encode() for i in range(14))
    job = _final(_drop(cloud, template_id, b"username,score\n" + body, "resume"))
    assert (job.total, job.processed, job.succeeded, job.failed) == (14, 14, 9, 5)
    assert sorted(_failed(job.job_id)) == sorted(bad)
    pauses = [log for log in jobs.list_logs(job.job_id)[0] if "paused" in log.message]
    assert len(pauses) >= 4


def test_a_repeated_split_neither_resets_nor_recounts_finished_rows(cloud: Any, template_id: str) -> None:
    data = b"username,score\nalice,1\nbob\ncarol,3\n"
    key = _drop(cloud, template_id, data, "again")
    job = _final(key)
    assert (job.total, job.succeeded, job.failed) == (3, 2, 1)
    head = aws.client("s3").head_object(Bucket=cloud.refs.bucket, Key=key)
    # A redelivered first message after a crash: the split runs again from the top.
    state = {"job_id": job.job_id, "kind": "poster", "bucket": cloud.refs.bucket, "key": key,
             "etag": head["ETag"], "size": head["ContentLength"], "cursor": None, "sent": 0}
    assert splitter._split_csv(state, lambda: 10**9) is True
    assert all(i.status != "pending" for i in jobs.iter_items(job.job_id))
    time.sleep(3)  # the render messages sent again land on items already done
    again = jobs.get_job(job.job_id)
    assert (again.processed, again.succeeded, again.failed) == (3, 2, 1)


def test_a_csv_over_the_row_limit_fails_the_job_before_any_item(cloud: Any, template_id: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(splitter, "MAX_ROWS", 5)
    job = _final(_drop(cloud, template_id, b"username,score\n" + _good(0, 6), "limit"))
    assert job.status == "failed" and job.error and "more than 5 rows" in job.error
    assert list(jobs.iter_items(job.job_id)) == []


@pytest.mark.parametrize(("data", "words"), [
    (b"username,score\n", "no rows"),
    (b"username,score\n\n \n", "no rows"),
    (b"", "empty"),
    (b"\n\n", "no header"),
    (b"username," + b"h" * (ONE_MB + 5) + b"\nalice,1\n", "header row cannot be read"),
])
def test_a_file_refused_as_a_whole_fails_the_job_with_the_reason(cloud: Any, template_id: str, data: bytes,
                                                                 words: str) -> None:
    job = _final(_drop(cloud, template_id, data, "refused"))
    assert job.status == "failed" and job.error and words in job.error
    assert job.total == 0
