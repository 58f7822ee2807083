"""POST /api/generate-bulk (seed 000): CSV rows and profile look-ups become poster items."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest

from posterflow import jobs
from tests.integration.helpers import api, wait_for

CARD = "<div style='font:18px sans-serif'>{{ username }} — {{ score }}</div>"


@pytest.fixture(scope="module")
def template_id(cloud: Any) -> str:
    section = f"bulk-{uuid.uuid4().hex[:6]}"
    status, body, _ = api(cloud, "POST", "/api/templates/upload", {
        "section": section, "name": "Bulk card", "format": "jpeg", "width": 200, "height": 100,
        "html_content": CARD})
    assert status == 201, body
    return f"{section}_latest"


def _finished(job_id: str) -> jobs.Job:
    def done() -> jobs.Job | None:
        job = jobs.get_job(job_id)
        return job if job.is_final else None

    return wait_for(done, timeout=90, interval=0.3, what=f"job {job_id} to finish")


def _input(item: jobs.Item) -> dict[str, Any]:
    assert item.input is not None
    return item.input


def _items(job_id: str) -> dict[int, jobs.Item]:
    return {i.item_id: i for i in jobs.iter_items(job_id)}


def test_csv_text_rows_render_and_bad_rows_fail_alone(cloud: Any, template_id: str) -> None:
    csv_text = ("Username,Score\n"
                "alice,10\n"
                "bob,\"=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\"\n"
                "\n"
                "carol\n"
                "dave,7,extra\n")
    status, body, _ = api(cloud, "POST", "/api/generate-bulk", {
        "bulkMethod": "csv", "csvData": csv_text, "template_id": template_id, "size": "instagram-square",
        "model": "flash"})
    assert status == 202, body
    assert body["success"] is True and body["total_items"] == 4 and body["failed_items"] == 2
    assert body["status_endpoint"] == f"/api/templates/job/{body['job_id']}" and body["token"]
    job = _finished(body["job_id"])
    assert job.status == "completed_with_errors" and (job.processed, job.succeeded, job.failed) == (4, 2, 2)
    items = _items(job.job_id)
    assert items[0].entity_id == "alice" and items[0].status == "succeeded"
    # A formula cell is data: rendered as text, never evaluated, kept verbatim.
    assert items[1].status == "succeeded"
    assert _input(items[1])["custom_data"]["score"] == '=HYPERLINK("http://evil.example","x")'
    assert items[2].status == "failed" and "score" in (items[2].error or "")
    assert items[3].status == "failed" and "3 cells" in (items[3].error or "")


def test_csv_inline_template_and_explicit_columns(cloud: Any) -> None:
    html = f"<p style='font:16px serif'>{{{{ name }}}} ({{{{ title }}}}) {uuid.uuid4().hex}</p>"
    rows = [{"username": "u1", "name": "Ana", "title": "CTO", "secret": "x"},
            {"username": "u2", "name": "Ben", "title": "CEO", "secret": "y"}]
    status, body, _ = api(cloud, "POST", "/api/generate-bulk", {
        "bulkMethod": "csv", "csvData": rows, "csvTemplate": html, "csvColumns": ["name", "title"],
        "format": "jpeg", "width": 200, "height": 100})
    assert status == 202, body
    job = _finished(body["job_id"])
    assert job.status == "completed" and job.succeeded == 2
    items = _items(job.job_id)
    assert items[0].entity_id == "u1" and _input(items[0])["columns"] == ["name", "title"]
    # The same inline HTML is stored once, whatever request brings it again.
    status, again, _ = api(cloud, "POST", "/api/generate-bulk", {
        "bulkMethod": "csv", "csvData": rows[:1], "csvTemplate": html, "csvColumns": ["name", "title"]})
    assert status == 202 and again["template_id"] == body["template_id"]


def test_csv_missing_required_column_fails_every_row_naming_it(cloud: Any, template_id: str) -> None:
    status, body, _ = api(cloud, "POST", "/api/generate-bulk", {
        "bulkMethod": "csv", "csvData": "username\nalice\nbob\n", "template_id": template_id})
    assert status == 202, body
    job = _finished(body["job_id"])
    items = list(jobs.iter_items(job.job_id))
    assert len(items) == 2 and all(i.status == "failed" and "score" in (i.error or "") for i in items)


@pytest.mark.parametrize(("payload", "status", "code"), [
    ({"bulkMethod": "csv", "csvData": "username,score\n"}, 422, "no_rows"),
    ({"bulkMethod": "csv", "csvData": "a,b\n\x00\x01\x02\x03\x04,\x05\x06\x07\x08"}, 422, "invalid_csv"),
    ({"bulkMethod": "csv"}, 422, "validation_error"),
    ({"bulkMethod": "xml", "csvData": "a\n1\n"}, 422, "validation_error"),
    ({"bulkMethod": "csv", "csvData": "username,score\n" + "u,1\n" * 10_001}, 413, "too_many_rows"),
    ({"bulkMethod": "csv", "csvData": "username,score\nu,1\n", "csvColumns": ["username"]}, 422,
     "columns_mismatch"),
])
def test_bad_bulk_requests(cloud: Any, template_id: str, payload: dict[str, Any], status: int, code: str) -> None:
    got, body, _ = api(cloud, "POST", "/api/generate-bulk", {"template_id": template_id, **payload})
    assert (got, body["error"]["code"]) == (status, code), body


class _Profiles(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        user = unquote(self.path.rsplit("/", 1)[-1])
        if user.startswith("ghost"):
            self.send_response(404)
            self.end_headers()
            return
        payload = {"data": {"username": user, "score": len(user), "path": self.path,
                            "links": {"site": f"https://{user}.example"}}}
        raw = b"<html>oops</html>" if user == "notjson" else json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def profile_source(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Profiles)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("POSTERFLOW_PROFILE_URL_TEMPLATE", f"http://127.0.0.1:{server.server_port}/users/{{id}}")
    monkeypatch.setenv("POSTERFLOW_PROFILE_ALLOW_LOOPBACK", "1")
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_html_profiles_fill_posters_and_failed_lookups_fail_alone(cloud: Any, template_id: str,
                                                                  profile_source: str) -> None:
    status, body, _ = api(cloud, "POST", "/api/generate-bulk", {
        "bulkMethod": "html", "template_id": template_id,
        "userIdentifiers": "alice, bob,ghost1,notjson,,carol"})
    assert status == 202, body
    assert body["total_items"] == 5 and body["failed_items"] == 2
    job = _finished(body["job_id"])
    assert (job.succeeded, job.failed) == (3, 2)
    items = _items(job.job_id)
    assert [items[i].entity_id for i in range(5)] == ["alice", "bob", "ghost1", "notjson", "carol"]
    assert _input(items[0])["custom_data"]["score"] == 5
    assert _input(items[0])["custom_data"]["links_site"] == "https://alice.example"
    assert "404" in (items[2].error or "") and "JSON" in (items[3].error or "")


def test_html_identifiers_cannot_leave_the_source_path(cloud: Any, template_id: str, profile_source: str) -> None:
    status, body, _ = api(cloud, "POST", "/api/generate-bulk", {
        "bulkMethod": "html", "template_id": template_id, "userIdentifiers": ["a/b?x=1", "../../admin"]})
    assert status == 202, body
    items = _items(body["job_id"])
    # Encoded into the one slot: the profile server saw a single path segment.
    assert _input(items[0])["custom_data"]["path"] == "/users/a%2Fb%3Fx%3D1"
    assert _input(items[0])["custom_data"]["username"] == "a/b?x=1"
    # A traversal is refused even encoded, and fails only its own item.
    assert items[1].status == "failed" and "path traversal" in (items[1].error or "")


def test_html_without_a_loopback_opt_in_is_refused(cloud: Any, template_id: str, profile_source: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POSTERFLOW_PROFILE_ALLOW_LOOPBACK")
    status, body, _ = api(cloud, "POST", "/api/generate-bulk", {
        "bulkMethod": "html", "template_id": template_id, "userIdentifiers": "alice"})
    assert status == 202, body
    (item,) = _items(body["job_id"]).values()
    assert item.status == "failed" and "not allowed" in (item.error or "")


def test_html_without_a_profile_source_is_a_clear_503(cloud: Any, template_id: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POSTERFLOW_PROFILE_URL_TEMPLATE", raising=False)
    status, body, _ = api(cloud, "POST", "/api/generate-bulk", {
        "bulkMethod": "html", "template_id": template_id, "userIdentifiers": "alice"})
    assert status == 503 and body["error"]["code"] == "profile_source_not_configured"
    status, body, _ = api(cloud, "POST", "/api/generate-bulk", {
        "bulkMethod": "html", "template_id": template_id, "userIdentifiers": ",".join(["u"] * 201)})
    assert status == 413 and "POST /api/uploads" in body["error"]["message"]


@pytest.mark.parametrize("path", ["/api/generate-bulk", "/api/uploads"])
def test_malformed_json_is_400(cloud: Any, path: str) -> None:
    status, body, _ = api(cloud, "POST", path, raw=b'{"bulkMethod": "csv", "csvData": ')
    assert status == 400 and body["error"]["code"] == "malformed_json"
