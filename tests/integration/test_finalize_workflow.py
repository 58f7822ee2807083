"""Finalize end to end on the local cloud: batch → archive → email (.eml) → download → webhook."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import threading
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from posterflow import aws, config, jobs, tenancy, tokens
from posterflow.finalize.webhook import ENV_ALLOW_LOOPBACK, SIGNATURE_HEADER
from tests.integration.helpers import api, fetch, wait_for

HTML = "<html><body style='margin:0'><div style='font-size:20px'>Hello {{ name }}</div></body></html>"
OUT = {"format": "jpeg", "width": 200, "height": 100}


class Receiver:
    """A webhook receiver on 127.0.0.1: records every POST; ``fail_first`` paths answer 503 once."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.fail_first: set[str] = set()
        self._failed: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append((self.path, dict(self.headers), body))
                status = 200
                if self.path in receiver.fail_first and self.path not in receiver._failed:
                    receiver._failed.add(self.path)
                    status = 503
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def posts(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for p, h, b in self.requests if p == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    saved = os.environ.get(ENV_ALLOW_LOOPBACK)
    os.environ[ENV_ALLOW_LOOPBACK] = "1"
    r = Receiver()
    yield r
    r.server.shutdown()
    if saved is None:
        os.environ.pop(ENV_ALLOW_LOOPBACK, None)
    else:
        os.environ[ENV_ALLOW_LOOPBACK] = saved


@pytest.fixture(scope="module")
def template_id(cloud: Any) -> str:
    section = f"fin-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(
        cloud,
        "POST",
        "/api/templates/upload",
        {"section": section, "name": "Finalize", "html_content": HTML, "set_as_active": True},
    )
    assert status == 201, body
    return str(body["template_id"])


def run_batch(cloud: Any, template_id: str, items: list[dict[str, Any]], **extra: Any) -> str:
    status, body, _ = api(
        cloud, "POST", "/api/generate-batch", {"template_id": template_id, "items": items, **OUT, **extra}
    )
    assert status == 202, body
    job_id = str(body["job_id"])
    wait_finalized(job_id)
    return job_id


def execution_arn(job_id: str, name: str | None = None) -> str:
    sm = config.state_machine_arn("finalize")
    return sm.replace(":stateMachine:", ":execution:") + f":{name or job_id}"


def wait_finalized(job_id: str, name: str | None = None, timeout: float = 120) -> dict[str, Any]:
    sfn = aws.client("stepfunctions")

    def done() -> dict[str, Any] | None:
        try:
            d = sfn.describe_execution(executionArn=execution_arn(job_id, name))
        except sfn.exceptions.ExecutionDoesNotExist:
            return None
        return d if d["status"] != "RUNNING" else None

    return dict(wait_for(done, timeout=timeout, interval=0.2, what=f"finalize of {job_id}"))


def mails_for(cloud: Any, job_id: str) -> list[EmailMessage]:
    out: list[EmailMessage] = []
    for path in sorted(Path(cloud.options.out_dir, "mail").glob("*.eml")):
        msg = BytesParser(_class=EmailMessage, policy=policy.default).parsebytes(path.read_bytes())
        if msg["X-Posterflow-Job"] == job_id:
            out.append(msg)
    return out


def parts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def get_no_redirect(url: str) -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def download_zip(link: str) -> zipfile.ZipFile:
    status, headers, _ = get_no_redirect(link)
    assert status == 302, status
    return zipfile.ZipFile(io.BytesIO(fetch(headers["Location"])))


def log_messages(job_id: str) -> list[str]:
    logs, _ = jobs.list_logs(job_id, limit=1000)
    return [entry.message for entry in logs]


def test_batch_of_50_email_link_zip_and_signed_webhook(cloud: Any, template_id: str, receiver: Receiver) -> None:
    hook = f"/hook/{uuid.uuid4().hex[:8]}"
    items = [{"name": f"Person {i}", "entity_id": f"p-{i}"} for i in range(50)]
    job_id = run_batch(
        cloud,
        template_id,
        items,
        name="Spring =posters",
        notify_email="ops@example.com",
        webhook_url=receiver.url + hook,
    )
    job = jobs.get_job(job_id)
    assert job.status == jobs.JobStatus.COMPLETED and job.succeeded == 50
    assert job.archive_key is not None

    (msg,) = mails_for(cloud, job_id)
    assert msg["To"] == "ops@example.com"
    assert "completed" in msg["Subject"] and "50" in msg["Subject"]
    text, html = parts(msg)
    link = re.search(r"(http\S+/api/jobs/\S+/download\?token=\S+)", text)
    assert link is not None, text
    assert "Download the results" in html
    archive = download_zip(link.group(1))
    names = archive.namelist()
    images = sorted(n for n in names if n.endswith(".jpg") or n.endswith(".jpeg"))
    assert len(images) == 50 and set(names) - set(images) == {"manifest.csv", "manifest.json"}
    assert archive.read(images[0])[:3] == b"\xff\xd8\xff"  # a real JPEG
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["job_id"] == job_id and manifest["succeeded"] == 50
    assert sorted(row["file_name"] for row in manifest["items"]) == images
    assert {row["entity_id"] for row in manifest["items"]} == {f"p-{i}" for i in range(50)}
    rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert len(rows) == 50 and all(r["status"] == "succeeded" for r in rows)

    ((headers, body),) = receiver.posts(hook)
    tokens.verify_webhook_signature(body, headers[SIGNATURE_HEADER], secret=tenancy.webhook_secret("default"))
    payload = json.loads(body)
    assert payload["job_id"] == job_id and payload["status"] == "completed"
    assert payload["counts"]["succeeded"] == 50 and "/download?token=" in payload["results_url"]
    with pytest.raises(tokens.TokenInvalid):
        tokens.verify_webhook_signature(body + b" ", headers[SIGNATURE_HEADER],
                                        secret=tenancy.webhook_secret("default"))


def test_failed_items_complete_with_errors_and_email_lists_reasons(
    cloud: Any, template_id: str, receiver: Receiver
) -> None:
    hook = f"/flaky/{uuid.uuid4().hex[:8]}"
    receiver.fail_first.add(hook)
    items = [
        {"name": "Ann", "entity_id": "ok-1"},
        {"entity_id": "no-name-1"},
        {"name": "Bo", "entity_id": "ok-2"},
        {"entity_id": "no-name-2", "other": "x"},
    ]
    job_id = run_batch(cloud, template_id, items, notify_email="team@example.com", webhook_url=receiver.url + hook)
    job = jobs.get_job(job_id)
    assert job.status == jobs.JobStatus.COMPLETED_WITH_ERRORS and (job.succeeded, job.failed) == (2, 2)

    (msg,) = mails_for(cloud, job_id)
    assert "completed with errors" in msg["Subject"]
    text, html = parts(msg)
    assert "2 of 4 posters succeeded, 2 failed" in text
    assert "no-name-1" in text and "no-name-2" in text and "missing" in text.lower()
    assert "no-name-1" in html
    archive = download_zip(re.search(r"(http\S+/download\?token=\S+)", text).group(1))  # type: ignore[union-attr]
    rows = {r["entity_id"]: r for r in csv.DictReader(io.StringIO(archive.read("manifest.csv").decode()))}
    assert rows["no-name-1"]["status"] == "failed" and "missing" in rows["no-name-1"]["error"].lower()
    assert rows["no-name-1"]["file_name"] == "" and rows["ok-1"]["file_name"] in archive.namelist()

    # The receiver answered 503 once: the state machine retried, the second attempt landed.
    posts = receiver.posts(hook)
    assert len(posts) == 2
    assert json.loads(posts[1][1])["status"] == "completed_with_errors"
    messages = log_messages(job_id)
    assert any("webhook attempt 1 failed: webhook answered HTTP 503" in m for m in messages)
    assert any(m.startswith("webhook delivered: HTTP 200") for m in messages)


def test_zero_successes_gives_manifest_only_archive_and_says_so(cloud: Any, template_id: str) -> None:
    job_id = run_batch(cloud, template_id, [{"entity_id": "a"}, {"entity_id": "b"}], notify_email="x@example.com")
    job = jobs.get_job(job_id)
    assert job.status == jobs.JobStatus.COMPLETED_WITH_ERRORS and job.succeeded == 0
    (msg,) = mails_for(cloud, job_id)
    assert "no posters were produced" in msg["Subject"]
    text, _ = parts(msg)
    assert "holds only the manifest" in text
    archive = download_zip(re.search(r"(http\S+/download\?token=\S+)", text).group(1))  # type: ignore[union-attr]
    assert sorted(archive.namelist()) == ["manifest.csv", "manifest.json"]


def test_forced_archive_failure_fails_job_with_failure_email(cloud: Any, receiver: Receiver) -> None:
    hook = f"/fail/{uuid.uuid4().hex[:8]}"
    job = jobs.create_job(
        "poster", total=1, notify_email="ops@example.com", webhook_url=receiver.url + hook, name="Broken outputs"
    )
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=0, entity_id="gone")])
    # The item claims an output that is not in S3: the archive cannot match the job.
    outcome = jobs.finish_item(job.job_id, 0, status="succeeded", output_key=f"outputs/{job.job_id}/000000.jpeg")
    assert outcome.finalize_started
    execution = wait_finalized(job.job_id)
    assert execution["status"] == "FAILED"
    failed = jobs.get_job(job.job_id)
    assert failed.status == jobs.JobStatus.FAILED and "missing" in (failed.error or "")
    assert failed.archive_key is None

    (msg,) = mails_for(cloud, job.job_id)
    assert "failed" in msg["Subject"]
    text, _ = parts(msg)
    assert "ArchiveError" in text and "missing" in text and "/download?token=" not in text
    ((_, body),) = receiver.posts(hook)
    assert json.loads(body)["status"] == "failed" and json.loads(body)["results_url"] is None

    status, body_, _ = api(cloud, "GET", f"/api/jobs/{job.job_id}/download?token={tokens.download_token(job.job_id)}")
    assert status == 404 and body_["error"]["code"] == "no_archive"


def test_second_finalize_run_sends_no_second_email(cloud: Any, template_id: str, receiver: Receiver) -> None:
    hook = f"/twice/{uuid.uuid4().hex[:8]}"
    job_id = run_batch(
        cloud,
        template_id,
        [{"name": "A"}, {"name": "B"}],
        notify_email="ops@example.com",
        webhook_url=receiver.url + hook,
    )
    first = jobs.get_job(job_id)
    assert first.status == jobs.JobStatus.COMPLETED
    sfn = aws.client("stepfunctions")
    sfn.start_execution(
        stateMachineArn=config.state_machine_arn("finalize"),
        name=f"{job_id}-again",
        input=json.dumps({"job_id": job_id, "finalize_round": 0}),
    )
    again = wait_finalized(job_id, f"{job_id}-again")
    assert again["status"] == "SUCCEEDED"
    assert json.loads(again["output"])["outcome"]["archive_key"] == first.archive_key
    assert len(mails_for(cloud, job_id)) == 1
    assert len(receiver.posts(hook)) == 1
    second = jobs.get_job(job_id)
    assert second.status == jobs.JobStatus.COMPLETED and second.archive_key == first.archive_key


def test_bad_email_and_webhook_are_recorded_and_job_completes(cloud: Any, template_id: str) -> None:
    job_id = run_batch(
        cloud,
        template_id,
        [{"name": "A"}],
        notify_email="not-an-address",
        webhook_url="http://169.254.169.254/latest/meta-data",
    )
    assert jobs.get_job(job_id).status == jobs.JobStatus.COMPLETED
    assert mails_for(cloud, job_id) == []
    messages = log_messages(job_id)
    assert any("notification email not sent: invalid notification email address" in m for m in messages)
    assert any("webhook not delivered" in m and "non-public address (169.254.169.254)" in m for m in messages)

    job_id = run_batch(cloud, template_id, [{"name": "B"}], webhook_url="ftp://example.com/hook")
    assert jobs.get_job(job_id).status == jobs.JobStatus.COMPLETED
    assert any("must be http(s)" in m for m in log_messages(job_id))


def test_download_link_errors(cloud: Any) -> None:
    job = jobs.create_job("poster", total=2)
    good = tokens.download_token(job.job_id)
    status, body, _ = api(cloud, "GET", f"/api/jobs/{job.job_id}/download?token={good}")
    assert status == 409 and body["error"]["code"] == "archive_not_ready"
    expired = tokens.download_token(job.job_id, ttl_s=-60)
    status, body, _ = api(cloud, "GET", f"/api/jobs/{job.job_id}/download?token={expired}")
    assert status == 403 and body["error"]["code"] == "link_expired" and "expired" in body["error"]["message"]
    tampered = f"{int(good.split('.')[0]) + 86400}.{good.split('.')[1]}"
    status, body, _ = api(cloud, "GET", f"/api/jobs/{job.job_id}/download?token={tampered}")
    assert status == 403 and body["error"]["code"] == "invalid_token"
    other = tokens.download_token("some-other-job")
    status, body, _ = api(cloud, "GET", f"/api/jobs/{job.job_id}/download?token={other}")
    assert status == 403 and body["error"]["code"] == "invalid_token"
    status, body, _ = api(cloud, "GET", f"/api/jobs/{job.job_id}/download")
    assert status == 403 and body["error"]["code"] == "missing_token"
