"""Priority lanes on the local cloud (issue #18): ``priority`` on every job-creating route and on S3
drops, the urgent lane's queues and pollers, and an urgent job overtaking a large normal one.

Which lane carried the work is read from the local cloud's own pollers (records received per
queue), not from the code under test.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from typing import Any

import pytest

from posterflow import aws, jobs
from posterflow_local.faults import FaultConfig
from tests import photos
from tests.events import load_event
from tests.integration.helpers import api, upload_card_template, wait_for

RANGE = "from 1 (most urgent) to 10"
ITEM = {"name": "Ada"}


@pytest.fixture(scope="module")
def template_id(cloud: Any) -> str:
    # Cheap items: a 200x100 JPEG of one word.
    return upload_card_template(cloud, "lanes", "<b style='font:14px sans-serif'>{{ name }}</b>", name="Lane card")


def received(cloud: Any, queue_key: str) -> int:
    """Records the local cloud's pollers of one queue have handed to its function so far."""
    url = cloud.refs.queue_urls[queue_key]
    return sum(p.stats.records for p in cloud.sqs_pollers if p.queue_url == url)


def received_since(cloud: Any, keys: tuple[str, ...], before: int, expected: int) -> int:
    """Records received on ``keys`` since ``before``, once ``expected`` have come (a poller counts
    a batch after its invocation returns, which may be after the job is final), or at timeout."""
    def count() -> int:
        return sum(received(cloud, k) for k in keys) - before

    with contextlib.suppress(AssertionError):  # fewer came: the caller's assertion says how many
        wait_for(lambda: count() >= expected, timeout=10, interval=0.05, what="the pollers' counts")
    return count()


def drained(cloud: Any, queue_key: str, timeout: float = 60) -> None:
    """Wait until nothing is waiting or in flight on one queue (a cancelled job's messages are
    still received after the job is final)."""
    sqs, url = aws.client("sqs"), cloud.refs.queue_urls[queue_key]

    def empty() -> bool:
        a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return a["ApproximateNumberOfMessages"] == a["ApproximateNumberOfMessagesNotVisible"] == "0"

    wait_for(empty, timeout=timeout, interval=0.1, what=f"queue {queue_key} to drain")


def final(job_id: str, timeout: float = 90) -> jobs.Job:
    def done() -> jobs.Job | None:
        job = jobs.get_job(job_id)
        return job if job.is_final else None

    return wait_for(done, timeout=timeout, interval=0.1, what=f"job {job_id} to finish")


def creating_requests(template_id: str, priority: Any) -> dict[str, dict[str, Any]]:
    """One body per job-creating JSON route, each with ``priority``."""
    return {
        "/api/generate-async": {"template_id": template_id, "custom_data": ITEM, "priority": priority},
        "/api/templates/generate": {"template_id": template_id, "custom_data": ITEM, "priority": priority},
        "/api/generate-batch": {"template_id": template_id, "items": [ITEM, ITEM], "priority": priority},
        "/api/generate-bulk": {"bulkMethod": "csv", "template_id": template_id, "csvData": "name\nAda\nBob\n",
                               "priority": priority},
        "/api/uploads": {"kind": "poster", "filename": "rows.csv", "template_id": template_id,
                         "priority": priority},
        "/api/batch/add-images": {"images": [f"uploads/default/lanes-{uuid.uuid4().hex[:6]}/none.jpg"],
                                  "priority": priority},
    }


@pytest.mark.parametrize("priority", [0, 11, -3, 2.5, True, "urgent", "", [1]])
def test_a_priority_outside_one_to_ten_is_a_422_naming_the_range(cloud: Any, template_id: str,
                                                                  priority: Any) -> None:
    for path, body in creating_requests(template_id, priority).items():
        status, answer, _ = api(cloud, "POST", path, body)
        if priority == "":  # a blank form value means absent, as in S3 metadata
            assert status in (201, 202), (path, answer)
            continue
        assert status == 422, (path, answer)
        assert answer["error"]["code"] == "validation_error", path
        (detail,) = [d for d in answer["error"]["details"] if d["loc"][-1] == "priority"]
        assert RANGE in detail["msg"], (path, detail)


def test_priority_is_stored_shown_and_routes_the_work_to_its_lane(cloud: Any, template_id: str) -> None:
    urgent_before = received(cloud, "render_urgent") + received(cloud, "crop_urgent")
    made: dict[str, tuple[str, int | None]] = {}
    for n, (path, body) in enumerate(creating_requests(template_id, None).items()):
        priority = [1, 3, 2, 9, None, 3][n]
        status, answer, _ = api(cloud, "POST", path, {**body, "priority": priority} if priority else body)
        assert status in (201, 202), (path, answer)
        made[path] = (answer["job_id"], priority)
    for path, (job_id, priority) in made.items():
        status, shown, _ = api(cloud, "GET", f"/api/jobs/{job_id}")
        assert status == 200
        assert shown["priority"] == priority, path
        assert shown["lane"] == ("urgent" if priority is not None and priority <= 3 else "normal"), path
        assert jobs.get_job(job_id).priority == priority
    _, batch, _ = api(cloud, "GET", f"/api/batch/status/{made['/api/batch/add-images'][0]}")
    assert batch["batch"]["priority"] == 3
    for path in ("/api/generate-async", "/api/templates/generate", "/api/generate-batch", "/api/generate-bulk",
                 "/api/batch/add-images"):
        final(made[path][0])
    # 1 + 1 + 2 renders and 1 crop went through the urgent lanes (the bulk job is priority 9).
    assert received_since(cloud, ("render_urgent", "crop_urgent"), urgent_before, 5) == 5


def test_upload_zip_priority_runs_its_crops_in_the_urgent_lane(cloud: Any) -> None:
    """Seed 004's ``-F priority=2`` (a form field, text): the job is urgent and its
    photo is cropped through the urgent crop queue."""
    drained(cloud, "crop_urgent")
    before = received(cloud, "crop_urgent")
    archive = photos.zip_of([("team/astronaut.jpg", photos.jpeg(photos.astronaut()))])
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"priority\"\r\n\r\n2\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"photos.zip\"\r\n"
            "Content-Type: application/zip\r\n\r\n").encode() + archive + f"\r\n--{boundary}--\r\n".encode()
    status, made, _ = api(cloud, "POST", "/api/batch/upload-zip", raw=body,
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 202, made
    job = final(made["job_id"])
    assert (job.priority, job.kind, job.succeeded) == (2, "crop", 1)
    assert received_since(cloud, ("crop_urgent",), before, 1) == 1


def test_s3_drop_metadata_priority(cloud: Any, template_id: str) -> None:
    s3 = aws.client("s3")
    before = received(cloud, "render_urgent")
    key = f"uploads/lanes-{uuid.uuid4().hex[:8]}/rows.csv"
    s3.put_object(Bucket=cloud.refs.bucket, Key=key, Body=b"name\nAda\nBob\nCy\n",
                  Metadata={"template-id": template_id, "priority": "2"})
    job_id = wait_for(lambda: next((j.job_id for j in jobs.list_jobs(limit=50, all_tenants=True)[0]
                                    if j.metadata.get("upload") == key), None), timeout=30, what="the drop's job")
    job = final(job_id)
    assert (job.priority, job.status, job.succeeded) == (2, "completed", 3)
    assert received_since(cloud, ("render_urgent",), before, 3) == 3

    bad = f"uploads/lanes-{uuid.uuid4().hex[:8]}/rows.csv"
    s3.put_object(Bucket=cloud.refs.bucket, Key=bad, Body=b"name\nAda\n",
                  Metadata={"template-id": template_id, "priority": "urgent"})
    job_id = wait_for(lambda: next((j.job_id for j in jobs.list_jobs(limit=50, all_tenants=True)[0]
                                    if j.metadata.get("upload") == bad), None), timeout=30, what="the drop's job")
    job = final(job_id)
    assert job.status == "failed" and job.error and "priority" in job.error and RANGE in job.error
    assert job.total == 0


def test_a_paused_split_goes_on_in_the_urgent_lane(cloud: Any, template_id: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Every chunk of 100 rows pauses the split (as if time ran short): the continuation
    messages carry the job's lane, and every row lands on the urgent queue."""
    from posterflow.split import runner

    monkeypatch.setattr(runner, "RESERVE_MS", 10**9)
    drained(cloud, "render_urgent")
    before = received(cloud, "render_urgent")
    key = f"uploads/lanes-{uuid.uuid4().hex[:8]}/rows.csv"
    rows = "".join(f"p{i}\n" for i in range(150))
    aws.client("s3").put_object(Bucket=cloud.refs.bucket, Key=key, Body=f"name\n{rows}".encode(),
                                Metadata={"template-id": template_id, "priority": "1"})
    job_id = wait_for(lambda: next((j.job_id for j in jobs.list_jobs(limit=50, all_tenants=True)[0]
                                    if j.metadata.get("upload") == key), None), timeout=30, what="the drop's job")
    job = final(job_id)
    assert (job.status, job.succeeded) == ("completed", 150)
    assert any("continuing" in log.message for log in jobs.list_logs(job_id, limit=100)[0])
    assert received_since(cloud, ("render_urgent",), before, 150) == 150


def test_retry_and_cancel_keep_an_urgent_job_in_its_lane(cloud: Any, template_id: str) -> None:
    # Two rows miss the placeholder: they fail, and a retry sends them again — to the urgent lane.
    items = [ITEM, {"other": 1}, ITEM, {"other": 2}]
    status, made, _ = api(cloud, "POST", "/api/generate-batch",
                          {"template_id": template_id, "items": items, "priority": 1})
    assert status == 202, made
    job = final(made["job_id"])
    assert (job.succeeded, job.failed) == (2, 2)
    before = received(cloud, "render_urgent"), received(cloud, "render")
    status, retried, _ = api(cloud, "POST", f"/api/jobs/{job.job_id}/retry")
    assert status == 200 and retried["retried"] == 2, retried
    job = final(job.job_id)
    assert (job.succeeded, job.failed, job.finalize_round) == (2, 2, 1)
    assert received_since(cloud, ("render_urgent",), before[0], 2) == 2

    status, made, _ = api(cloud, "POST", "/api/generate-batch",
                          {"template_id": template_id, "items": [ITEM] * 30, "priority": 2})
    status, cancelled, _ = api(cloud, "POST", f"/api/jobs/{made['job_id']}/cancel")
    assert status == 200, cancelled
    job = final(made["job_id"])
    assert job.status == "cancelled" and job.processed == 30 and job.succeeded + job.cancelled == 30
    drained(cloud, "render_urgent")  # the cancelled job's messages, each finished as a no-op


def test_a_redelivered_urgent_message_stays_in_its_lane(cloud: Any, template_id: str) -> None:
    """The render poller "dies" before deleting a batch: its ten messages come back on the
    urgent queue (the only place they are), are received again there and count once."""
    drained(cloud, "render_urgent")
    before = received(cloud, "render_urgent")
    with cloud.faults.active(FaultConfig(redelivery_s=0)) as stats:
        cloud.faults.drop_batches(cloud.spec.function("render").name, times=1)
        status, made, _ = api(cloud, "POST", "/api/generate-batch",
                              {"template_id": template_id, "items": [ITEM] * 10, "priority": 1})
        assert status == 202, made
        job = final(made["job_id"])
        assert (job.status, job.processed, job.succeeded) == ("completed", 10, 10)
        # The job completed with the first delivery; the redelivery follows on the same queue.
        wait_for(lambda: received(cloud, "render_urgent") - before >= 20, timeout=30, what="the redelivery")
        drained(cloud, "render_urgent")
    assert stats.dropped_batches == 1
    assert received(cloud, "render_urgent") - before == 20
    assert jobs.get_job(job.job_id).succeeded == 10  # counted once


def test_both_lanes_dead_letter_queues_fail_their_items(cloud: Any) -> None:
    sqs = aws.client("sqs")
    for lane_key in ("render_urgent", "crop_urgent", "render"):
        job = jobs.create_job("crop" if lane_key.startswith("crop") else "poster", total=1, priority=1)
        jobs.put_items(job.job_id, [jobs.NewItem(item_id=0)])
        sqs.send_message(QueueUrl=cloud.refs.queue_urls[f"{lane_key}_dlq"],
                         MessageBody=json.dumps({"job_id": job.job_id, "item_id": 0}))
        done = final(job.job_id)
        (item,) = list(jobs.iter_items(job.job_id))
        assert (done.failed, item.error_code) == (1, "retries_exhausted"), lane_key
        assert f"{lane_key.replace('_', '-')}-dlq" in (item.error or "")


def test_the_urgent_dlq_fixture_through_fn_dlq(cloud: Any) -> None:
    """events/dlq/render-urgent-dlq.json: a message of the urgent render lane that exhausted its
    retries, as Lambda delivers it from that lane's DLQ."""
    job = jobs.create_job("poster", total=1, priority=1)
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=0)])
    arn = aws.client("sqs").get_queue_attributes(QueueUrl=cloud.refs.queue_urls["render_urgent_dlq"],
                                                 AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    result = cloud.invoke("dlq", load_event("dlq/render-urgent-dlq", job_id=job.job_id, queue_arn=arn))
    assert not result.failed and result.payload == {"batchItemFailures": []}
    (item,) = list(jobs.iter_items(job.job_id))
    assert item.error_code == "retries_exhausted" and "posterflow-render-urgent-dlq" in (item.error or "")
    assert jobs.get_job(job.job_id).failed == 1


def test_the_stall_sweep_completes_an_urgent_job(cloud: Any) -> None:
    job = jobs.create_job("poster", total=3, priority=1)
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=0)])  # items 1 and 2 never written
    assert cloud.invoke("dlq", {"action": "sweep", "older_than_s": 0, "job_ids": [job.job_id]}).payload
    done = final(job.job_id)
    assert (done.failed, done.status) == (3, "completed_with_errors")


def test_queue_stats_show_each_lane(cloud: Any) -> None:
    status, stats, _ = api(cloud, "GET", "/api/batch/queue-stats")
    assert status == 200
    queues = stats["queues"]
    assert set(queues) == {"split", "render", "crop"}
    for work in ("render", "crop"):
        lanes = queues[work]["lanes"]
        assert set(lanes) == {"urgent", "normal"}
        assert lanes["urgent"]["queue"].endswith(f"{work}-urgent") and lanes["normal"]["queue"].endswith(work)
        for key in ("waiting", "in_flight", "dlq"):  # the old fields stay, summed over the lanes
            assert queues[work][key] == lanes["urgent"][key] + lanes["normal"][key]
    assert {"waiting", "in_flight", "dlq"} <= set(queues["split"])


def test_an_urgent_job_overtakes_a_large_normal_job(cloud: Any, template_id: str) -> None:
    """Done when (issue #18): a 600-item normal job is running; a 20-item priority-1 job
    submitted after it finishes while most of the normal job is still queued."""
    status, normal, _ = api(cloud, "POST", "/api/generate-batch",
                            {"template_id": template_id, "items": [{"name": f"n{i}"} for i in range(600)]})
    assert status == 202, normal
    wait_for(lambda: jobs.get_job(normal["job_id"]).processed >= 20, timeout=60, interval=0.05,
             what="the normal job to be running")
    submitted = time.monotonic()
    status, urgent, _ = api(cloud, "POST", "/api/generate-batch",
                            {"template_id": template_id, "items": [{"name": f"u{i}"} for i in range(20)],
                             "priority": 1})
    assert status == 202, urgent
    done = final(urgent["job_id"], timeout=60)
    urgent_s = time.monotonic() - submitted
    behind = jobs.get_job(normal["job_id"])
    assert (done.status, done.succeeded) == ("completed", 20)
    # Most of the normal job is still queued: without lanes the urgent job would wait for it all.
    print(json.dumps({"urgent_s": round(urgent_s, 2), "normal_processed_then": behind.processed}))
    assert behind.processed < 300, (behind.processed, urgent_s)
    normal_done = final(normal["job_id"], timeout=180)
    assert (normal_done.status, normal_done.succeeded, normal_done.processed) == ("completed", 600, 600)
