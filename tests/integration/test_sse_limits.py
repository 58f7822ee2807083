"""Job streams at their limits, against the stream function's own HTTP server as Lambda Web
Adapter calls it (request context in ``x-amzn-request-context``): heartbeats on a quiet stream,
the maximum duration (a ``reconnect`` frame, then a resume with ``Last-Event-ID``), the tenant
from API Gateway's ``identity.apiKeyId``, and API keys checked against this API's usage plans
when the gateway did not check them (the AWS path, on the embedded API Gateway)."""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from posterflow import aws, jobs, tenancy
from posterflow.errors import Reason
from posterflow.progress import sse, sse_server
from tests.events import load_event
from tests.integration.helpers import api, upload_card_template, wait_for
from tests.integration.test_sse_streams import Event, parse


@pytest.fixture(scope="module")
def short_server(cloud: Any) -> Iterator[str]:
    server, stop = sse_server.start_in_thread(
        stream_options={"poll_s": 0.05, "heartbeat_s": 0.3, "max_duration_s": 1.0, "retry_ms": 150})
    yield f"127.0.0.1:{server.server_port}"
    stop()


@pytest.fixture(scope="module")
def waiting_job(cloud: Any) -> dict[str, Any]:
    """A job that waits for its upload: it never ends while the tests run."""
    template = upload_card_template(cloud, "sselim", "<div>{{ name }}</div>")
    status, up, _ = api(cloud, "POST", "/api/uploads", {"kind": "poster", "filename": "rows.csv",
                                                        "template_id": template})
    assert status == 201, up
    return dict(up)


def _get(host: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, list[Event], str]:
    conn = http.client.HTTPConnection(host, timeout=20)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read().decode()
        events, _ = parse(body) if resp.status == 200 else ([], [])
        return resp.status, events, body
    finally:
        conn.close()


def _context(job_id: str, api_key_id: str | None) -> dict[str, str]:
    """The header Lambda Web Adapter adds: API Gateway's REST request context as JSON (the
    stream methods are key-less on AWS, so there ``apiKeyId`` is empty; a key-checked method, or
    the local gateway, fills it)."""
    context = load_event("stream/request-context", job_id=job_id, api_key_id=api_key_id)
    return {"x-amzn-request-context": json.dumps(context)}


def test_a_quiet_stream_heartbeats_then_asks_the_client_to_reconnect(short_server: str,
                                                                     waiting_job: dict[str, Any]) -> None:
    status, events, _ = _get(short_server, waiting_job["sse_endpoint"])
    assert status == 200
    names = [e.event for e in events]
    assert names[:2] == ["connected", "status"] and names[-1] == "reconnect", names
    assert names.count("heartbeat") >= 2, names
    assert events[-1].data["reason"] == "max_duration" and events[-1].data["retry_ms"] == 150
    assert all(e.id for e in events)
    # EventSource comes back with the last id: a resume, no snapshot, the same limits.
    status, again, _ = _get(short_server, waiting_job["sse_endpoint"], {"Last-Event-ID": str(events[-1].id)})
    assert status == 200 and again[0].event == "connected" and again[0].data["resumed"] is True
    assert not any(e.data.get("snapshot") for e in again)
    assert again[-1].event == "reconnect"


def test_the_gateway_checked_key_is_the_tenant(short_server: str, waiting_job: dict[str, Any]) -> None:
    path = f"/api/templates/job/{waiting_job['job_id']}/stream"
    # The job is the default tenant's (the local cloud's key-less caller).
    assert jobs.get_job(waiting_job["job_id"]).tenant == tenancy.DEFAULT_TENANT
    status, _, body = _get(short_server, path, _context(waiting_job["job_id"], "someone-else"))
    assert status == 404 and json.loads(body)["error"]["code"] == "job_not_found"
    status, events, _ = _get(short_server, path, _context(waiting_job["job_id"], tenancy.DEFAULT_TENANT))
    assert status == 200 and events[0].event == "connected"
    status, events, _ = _get(short_server, path, _context(waiting_job["job_id"], None))  # key-less: the local default
    assert status == 200 and events[0].event == "connected"
    status, _, body = _get(short_server, "/nowhere")
    assert status == 404 and json.loads(body)["error"]["code"] == "no_route"
    status, _, body = _get(short_server, "/healthz")
    assert status == 200


@pytest.fixture(scope="module")
def usage_plan_key(cloud: Any) -> dict[str, str]:
    """A REST API with a stage, a usage plan on it and a key in the plan, plus a key in no plan."""
    gw = aws.client("apigateway")
    rest = gw.create_rest_api(name=f"sse-keys-{uuid.uuid4().hex[:6]}")
    root = gw.get_resources(restApiId=rest["id"])["items"][0]["id"]
    gw.put_method(restApiId=rest["id"], resourceId=root, httpMethod="GET", authorizationType="NONE")
    gw.put_integration(restApiId=rest["id"], resourceId=root, httpMethod="GET", type="MOCK")
    gw.create_deployment(restApiId=rest["id"], stageName="prod")
    plan = gw.create_usage_plan(name=f"plan-{uuid.uuid4().hex[:6]}",
                                apiStages=[{"apiId": rest["id"], "stage": "prod"}])
    key = gw.create_api_key(name=f"k-{uuid.uuid4().hex[:6]}", enabled=True, value=f"v-{uuid.uuid4().hex}")
    gw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    stray = gw.create_api_key(name=f"s-{uuid.uuid4().hex[:6]}", enabled=True, value=f"s-{uuid.uuid4().hex}")
    return {"api_id": rest["id"], "key_id": key["id"], "value": key["value"], "stray": stray["value"]}


def test_api_keys_count_only_in_a_usage_plan_of_this_api(usage_plan_key: dict[str, str],
                                                         waiting_job: dict[str, Any]) -> None:
    keys = sse.ApiKeys(api_id=usage_plan_key["api_id"])
    assert keys.tenant_of(usage_plan_key["value"]) == tenancy.normalise(usage_plan_key["key_id"])
    assert keys.tenant_of(usage_plan_key["stray"]) is None  # a key of this account, in no plan of this API
    assert keys.tenant_of("not-a-key") is None
    assert sse.ApiKeys(api_id="other-api").tenant_of(usage_plan_key["value"]) is None
    request = sse.StreamRequest(job_id=waiting_job["job_id"], api_key=usage_plan_key["value"])
    with pytest.raises(jobs.JobNotFound):  # a genuine key of another tenant: the job does not exist for it
        sse.authorize(request, keys)
    with pytest.raises(sse.StreamRefused) as refused:
        sse.authorize(sse.StreamRequest(job_id=waiting_job["job_id"], api_key="not-a-key"), keys)
    assert refused.value.reason is Reason.INVALID_API_KEY


def test_without_token_or_key_a_deployed_stream_is_refused(waiting_job: dict[str, Any],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from posterflow import config

    monkeypatch.delenv(config.SSE_KEYLESS.name, raising=False)
    with pytest.raises(sse.StreamRefused) as refused:
        sse.authorize(sse.StreamRequest(job_id=waiting_job["job_id"]))
    assert refused.value.reason is Reason.UNAUTHENTICATED
    monkeypatch.setenv(config.SSE_KEYLESS.name, "default")
    assert sse.authorize(sse.StreamRequest(job_id=waiting_job["job_id"])).job_id == waiting_job["job_id"]


def test_streams_end_when_the_server_stops(cloud: Any, waiting_job: dict[str, Any]) -> None:
    server, stop = sse_server.start_in_thread(stream_options={"poll_s": 0.05})
    before = sse.active_streams()
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
    conn.request("GET", waiting_job["sse_endpoint"])
    resp = conn.getresponse()
    assert resp.status == 200
    wait_for(lambda: sse.active_streams() == before + 1, timeout=5, what="the stream to run")
    stop()
    assert sse.active_streams() == before
    conn.close()
