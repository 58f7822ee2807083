"""A CSV dropped into S3 with a template becomes a poster job: one item per row."""

from __future__ import annotations

import uuid
from typing import Any

from posterflow import aws, jobs
from tests.integration.helpers import upload_card_template, wait_for


def _template(cloud: Any) -> str:
    return upload_card_template(cloud, "csv", "<div style='font:20px sans-serif'>{{ username }} — {{ score }}</div>",
                                name="CSV card")


def _wait_done(key: str) -> jobs.Job:
    def find() -> jobs.Job | None:
        found, _ = jobs.list_jobs(limit=200)
        job = next((j for j in found if j.metadata.get("upload") == key), None)
        return job if job and job.total is not None and job.processed == job.total else None

    return wait_for(find, timeout=120, interval=0.5, what=f"job for {key} to finish")  # type: ignore[no-any-return]


def test_csv_drop_renders_rows_and_fails_bad_ones(cloud: Any) -> None:
    template_id = _template(cloud)
    csv_bytes = ("\ufeffUsername ;Score\n"
                 "alice;10\n"
                 "\n"
                 "bob;=HYPERLINK(\"http://evil\")\n"
                 "\"carol\nsmith\";7\n"
                 "dave\n").encode("utf-8")
    key = f"uploads/scores-{uuid.uuid4().hex[:6]}.csv"
    aws.client("s3").put_object(Bucket=cloud.refs.bucket, Key=key, Body=csv_bytes,
                                Metadata={"template-id": template_id})
    job = _wait_done(key)
    assert job.kind == "poster" and job.total == 4
    items = {i.item_id: i for i in jobs.iter_items(job.job_id)}
    assert items[0].entity_id == "alice" and items[0].status == "succeeded"
    # Formula-looking cells are data, rendered as text.
    assert items[1].status == "succeeded" and items[1].input["custom_data"]["score"] == '=HYPERLINK("http://evil")'
    assert items[2].status == "succeeded"  # a quoted newline stays inside the cell
    assert items[3].status == "failed" and items[3].error  # a short row fails with its reason


def test_csv_missing_required_column_fails_every_row(cloud: Any) -> None:
    template_id = _template(cloud)
    key = f"uploads/noscore-{uuid.uuid4().hex[:6]}.csv"
    aws.client("s3").put_object(Bucket=cloud.refs.bucket, Key=key, Body=b"username\nalice\nbob\n",
                                Metadata={"template-id": template_id})
    job = _wait_done(key)
    items = list(jobs.iter_items(job.job_id))
    assert len(items) == 2 and all(i.status == "failed" and "score" in (i.error or "") for i in items)


def test_binary_csv_fails_the_job(cloud: Any) -> None:
    template_id = _template(cloud)
    key = f"uploads/binary-{uuid.uuid4().hex[:6]}.csv"
    aws.client("s3").put_object(Bucket=cloud.refs.bucket, Key=key, Body=bytes(range(256)) * 40,
                                Metadata={"template-id": template_id})

    def failed() -> jobs.Job | None:
        found, _ = jobs.list_jobs(limit=200)
        return next((j for j in found if j.metadata.get("upload") == key and j.status == "failed"), None)

    job = wait_for(failed, timeout=60, interval=0.3, what="binary CSV job to fail")
    assert job.error and "upload refused" in job.error


def test_csv_without_template_fails_with_a_clear_reason(cloud: Any) -> None:
    key = f"uploads/orphan-{uuid.uuid4().hex[:6]}.csv"
    aws.client("s3").put_object(Bucket=cloud.refs.bucket, Key=key, Body=b"username\nalice\n")

    def failed() -> jobs.Job | None:
        found, _ = jobs.list_jobs(limit=200)
        return next((j for j in found if j.metadata.get("upload") == key and j.status == "failed"), None)

    job = wait_for(failed, timeout=60, interval=0.3, what="template-less CSV job to fail")
    assert job.error and "template" in job.error
