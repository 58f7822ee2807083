"""Each AWS-shaped fixture in ``events/`` driven through its real handler on the local cloud.

The fixtures are events as AWS sends them; the test supplies the resources (bucket, queue,
job) through ``load_event`` and checks what the handler did, through the API or the jobs
table, not merely that it returned."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from typing import Any

from websockets.sync.client import connect

from posterflow import aws, jobs, tenancy
from posterflow import resources as r
from tests import photos
from tests.events import load_event
from tests.integration.helpers import api, wait_for

SPEC = r.stack_spec()
FINAL = {"completed", "completed_with_errors", "failed", "cancelled"}


def invoke(cloud: Any, key: str, event: dict[str, Any]) -> Any:
    """The handler's answer; an invocation error fails the test with the handler's message."""
    result = cloud.runtime.invoke(SPEC.function(key).name, event)
    assert not result.failed, f"fn {key} raised {result.error_type}: {result.error_message}"
    return result.payload


def queue_arn(cloud: Any, key: str) -> str:
    attrs = aws.client("sqs").get_queue_attributes(QueueUrl=cloud.refs.queue_urls[key], AttributeNames=["QueueArn"])
    return str(attrs["Attributes"]["QueueArn"])


def put_zip(cloud: Any, key: str, entries: int = 2) -> dict[str, Any]:
    """A ZIP of text files (skipped entries: a job with items and no crop work) at ``key``;
    its head. The unique entry names give every upload its own ETag, hence its own job."""
    tag = uuid.uuid4().hex
    data = photos.zip_of([(f"notes-{tag}-{i}.txt", b"not a photo") for i in range(entries)])
    s3 = aws.client("s3")
    s3.put_object(Bucket=cloud.refs.bucket, Key=key, Body=data)
    return dict(s3.head_object(Bucket=cloud.refs.bucket, Key=key))


def default_jobs() -> list[jobs.Job]:
    # The tenant is explicit: an in-process invoke of fn api leaves the tenant of its request
    # in this thread's context (tenancy.use), and list_jobs would list that tenant's jobs.
    found, _ = jobs.list_jobs(limit=1000, tenant="default")
    return found


def upload_jobs(key: str) -> list[jobs.Job]:
    found = default_jobs()
    return [j for j in found if j.metadata.get("upload") == key]


def s3_put(cloud: Any, name: str, head: dict[str, Any], **fill: Any) -> dict[str, Any]:
    return load_event(name, bucket=cloud.refs.bucket, size=head["ContentLength"], etag=head["ETag"].strip('"'),
                      queue_arn=queue_arn(cloud, "split"), **fill)


# ---- splitter: S3 notifications through the split queue ------------------------------------

def test_s3_put_via_sqs_starts_a_job_for_the_object(cloud: Any) -> None:
    # Outside uploads/, so the bucket's own notification does not race this invocation.
    key = f"drops/{uuid.uuid4().hex[:8]}/photos.zip"
    head = put_zip(cloud, key, entries=2)
    answer = invoke(cloud, "splitter", s3_put(cloud, "splitter/s3-put-via-sqs", head, key=key))
    assert answer == {"batchItemFailures": []}
    (job,) = upload_jobs(key)
    assert (job.kind, job.total, job.tenant, job.name) == ("crop", 2, "default", "photos.zip")


def test_url_encoded_key_is_decoded_to_the_object_put(cloud: Any) -> None:
    # The fixture carries the key as S3 encodes it: team+photos/%C3%A9t%C3%A9+2026%2B1.zip
    key = "team photos/été 2026+1.zip"
    before = {j.job_id for j in upload_jobs(key)}
    head = put_zip(cloud, key, entries=1)
    answer = invoke(cloud, "splitter", s3_put(cloud, "splitter/s3-put-url-encoded-key", head))
    # Read undecoded, the key names no object: head_object fails and the message is retried.
    assert answer == {"batchItemFailures": []}
    (job,) = [j for j in upload_jobs(key) if j.job_id not in before]
    assert (job.kind, job.total, job.name) == ("crop", 1, "été 2026+1.zip")


def test_s3_test_event_is_ignored(cloud: Any) -> None:
    found = default_jobs()
    event = load_event("splitter/s3-test-event-via-sqs", bucket=cloud.refs.bucket,
                       queue_arn=queue_arn(cloud, "split"))
    assert json.loads(event["Records"][0]["body"])["Event"] == "s3:TestEvent"
    assert invoke(cloud, "splitter", event) == {"batchItemFailures": []}
    assert {j.job_id for j in default_jobs()} == {j.job_id for j in found}


# ---- api: REST proxy events ----------------------------------------------------------------

def _template(cloud: Any, section: str) -> str:
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": "Card", "format": "jpeg", "width": 200, "height": 100,
        "html_content": "<b>{{ name }}</b>"})
    assert status == 201, body
    return str(body["template_id"])


def _proxy_answer(cloud: Any, event: dict[str, Any]) -> tuple[int, Any]:
    answer = invoke(cloud, "api", event)
    return answer["statusCode"], json.loads(answer["body"])


def test_rest_get_with_query_string_answers_as_the_api(cloud: Any) -> None:
    section, other = f"fx-{uuid.uuid4().hex[:6]}", f"fx-{uuid.uuid4().hex[:6]}"
    mine, theirs = _template(cloud, section), _template(cloud, other)
    status, body = _proxy_answer(cloud, load_event("api/rest-proxy-get-query", section=section))
    assert status == 200
    # The query string reached the route: only the asked-for section is listed.
    assert [t["template_id"] for t in body["templates"]] == [mine] and theirs != mine
    via_http = api(cloud, "GET", f"/api/templates?section={section}")
    assert (status, body) == via_http[:2]


def test_rest_post_with_json_body_answers_as_the_api(cloud: Any) -> None:
    filename = f"{uuid.uuid4().hex[:8]}.zip"
    status, body = _proxy_answer(cloud, load_event("api/rest-proxy-post-json", filename=filename))
    assert status == 201, body
    assert body["kind"] == "crop" and body["key"] == f"uploads/default/{body['job_id']}/{filename}"
    http_status, http_body, _ = api(cloud, "POST", "/api/uploads",
                                    {"kind": "crop", "filename": filename, "name": "Team headshots"})
    assert http_status == status and set(http_body) == set(body)
    job = jobs.get_job(body["job_id"])
    assert (job.tenant, job.kind, job.name) == ("default", "crop", "Team headshots")


def test_rest_event_with_api_key_acts_as_that_tenant(cloud: Any) -> None:
    key_id = f"k{uuid.uuid4().hex[:9]}"
    event = load_event("api/rest-proxy-api-key", api_key_id=key_id, api_key=secrets.token_hex(20),
                       filename="headshots.zip")
    status, body = _proxy_answer(cloud, event)
    assert status == 201, body
    job = jobs.get_job(body["job_id"])
    assert job.tenant == key_id
    assert body["key"] == f"uploads/{key_id}/{job.job_id}/headshots.zip"
    # The local API has no key: it is the default tenant, to whom this job does not exist.
    assert api(cloud, "GET", f"/api/jobs/{job.job_id}")[0] == 404
    # The invocation ran in this thread, yet its tenant ended with it, as a Lambda's would.
    assert tenancy.current() == tenancy.DEFAULT_TENANT


# ---- progress: WebSocket routes and the stream ---------------------------------------------

def _upload_job(cloud: Any) -> dict[str, Any]:
    status, body, _ = api(cloud, "POST", "/api/uploads", {"kind": "crop", "filename": "ws.zip"})
    assert status == 201, body
    return dict(body)


def test_websocket_connect_without_token_is_refused(cloud: Any) -> None:
    job = _upload_job(cloud)
    refused = invoke(cloud, "progress", load_event("progress/connect-without-token", job_id=job["job_id"],
                                                   connection_id=f"fx{uuid.uuid4().hex[:10]}="))
    assert refused["statusCode"] == 401
    # The same connect with the job's token is let in, so the refusal is the token's.
    connection_id = f"fx{uuid.uuid4().hex[:10]}="
    accepted = invoke(cloud, "progress", load_event("progress/connect", job_id=job["job_id"], token=job["token"],
                                                    connection_id=connection_id))
    assert accepted["statusCode"] == 200
    forged = invoke(cloud, "progress", load_event("progress/connect", job_id=job["job_id"], token="x" + job["token"],
                                                  connection_id=f"fx{uuid.uuid4().hex[:10]}="))
    assert forged["statusCode"] == 403
    assert invoke(cloud, "progress", load_event("progress/disconnect", connection_id=connection_id)) == {
        "statusCode": 200}


def test_dynamodb_stream_batch_reaches_a_subscriber(cloud: Any) -> None:
    job = _upload_job(cloud)
    with connect(f"{cloud.refs.websocket_url}/?job_id={job['job_id']}&token={job['token']}",
                 open_timeout=30) as ws:
        # The greeting comes from the real stream; frames before it would not be delivered.
        hello = json.loads(ws.recv(timeout=30))
        assert hello["event"] == "connected", hello
        report = invoke(cloud, "progress", load_event("progress/dynamodb-stream-batch", job_id=job["job_id"]))
        assert report["jobs"] == 1 and report["frames"] >= 2, report
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while not ("fixture: item 0 rendered" in "".join(seen) and "speaker-1" in "".join(seen)):
            assert time.monotonic() < deadline, f"fixture frames not received: {seen}"
            seen.append(ws.recv(timeout=max(0.1, deadline - time.monotonic())))  # type: ignore[arg-type]


# ---- workers: SQS batches for a job that does not exist ------------------------------------

def test_render_batch_for_unknown_job_is_dropped(cloud: Any) -> None:
    job_id = f"gone-{uuid.uuid4().hex[:8]}"
    event = load_event("render/sqs-batch", job_id=job_id, template_id="speaker_latest",
                       queue_arn=queue_arn(cloud, "render"))
    assert invoke(cloud, "render", event) == {"batchItemFailures": []}
    assert api(cloud, "GET", f"/api/jobs/{job_id}")[0] == 404  # nothing was made up for it


def test_crop_batch_for_unknown_job_is_dropped(cloud: Any) -> None:
    job_id = f"gone-{uuid.uuid4().hex[:8]}"
    event = load_event("crop/sqs-batch", job_id=job_id, bucket=cloud.refs.bucket,
                       queue_arn=queue_arn(cloud, "crop"))
    assert invoke(cloud, "crop", event) == {"batchItemFailures": []}
    assert api(cloud, "GET", f"/api/jobs/{job_id}")[0] == 404


# ---- finalize: the state machine's task inputs ---------------------------------------------

def test_finalize_task_inputs_for_a_finished_job_run_their_steps(cloud: Any) -> None:
    key = f"drops/{uuid.uuid4().hex[:8]}/finished.zip"
    head = put_zip(cloud, key, entries=1)
    assert invoke(cloud, "splitter", s3_put(cloud, "splitter/s3-put-via-sqs", head, key=key)) == {
        "batchItemFailures": []}
    (job,) = upload_jobs(key)
    done: jobs.Job = wait_for(lambda: (j := jobs.get_job(job.job_id)).status in FINAL and j.archive_key and j,
                              timeout=120, interval=0.3, what="the job to be finalized")
    outcome = invoke(cloud, "finalize", load_event("finalize/task-input-archive", job_id=job.job_id))
    # A re-run of BuildArchive finds the archive of its round and lets the machine proceed.
    assert outcome["proceed"] is True and outcome["status"] == done.status
    assert outcome["archive_key"] == done.archive_key and outcome["notify"] is False
    completed = invoke(cloud, "finalize", load_event("finalize/task-input-complete", job_id=job.job_id,
                                                     archive_key=outcome["archive_key"]))
    assert completed == {"status": done.status}
    stale = invoke(cloud, "finalize", {**load_event("finalize/task-input-archive", job_id=job.job_id),
                                       "finalize_round": done.finalize_round + 1})
    assert stale["proceed"] is False and stale["reason"] == "stale round"
