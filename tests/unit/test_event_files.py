"""The event fixtures in ``events/``: every file parses, and ``load_event`` fills placeholders
(typed, inside SQS bodies too) and refuses what it cannot fill."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.events import EVENTS_DIR, UnfilledPlaceholder, load_event, placeholders

ROOT = EVENTS_DIR.parent
JSON_FILES = sorted(EVENTS_DIR.rglob("*.json"))


def _name(path: Path) -> str:
    return path.relative_to(EVENTS_DIR).with_suffix("").as_posix()


def test_there_are_fixtures_to_check() -> None:
    # Guards the parametrised test below against silently checking nothing.
    assert len(JSON_FILES) >= 20


@pytest.mark.parametrize("path", JSON_FILES, ids=_name)
def test_every_fixture_is_a_json_object(path: Path) -> None:
    event = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(event, dict) and event
    # SQS bodies are JSON documents in AWS too; a fixture's must parse once filled.
    for record in event.get("Records", []):
        if record.get("eventSource") == "aws:sqs":
            filled = load_event(_name(path), **{p: "x" for p in placeholders(event)})
            for r in filled["Records"]:
                json.loads(r["body"])
            break


def test_placeholders_are_filled_typed_and_inside_sqs_bodies() -> None:
    event = load_event("splitter/s3-put-via-sqs", bucket='b"q', key="a/b.zip", size=42, etag='"e1"',
                       queue_arn="arn:aws:sqs:us-east-1:123456789012:posterflow-split")
    record = event["Records"][0]
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:posterflow-split"
    s3 = json.loads(record["body"])["Records"][0]["s3"]
    # A value is escaped as the inner JSON needs (a quote in the bucket), and a whole-string
    # placeholder takes the value's type (S3 sends the size as a number).
    assert s3["bucket"] == {"name": 'b"q', "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                            "arn": 'arn:aws:s3:::b"q'}
    assert s3["object"]["size"] == 42 and s3["object"]["eTag"] == '"e1"' and s3["object"]["key"] == "a/b.zip"
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()


def test_each_load_is_a_fresh_copy() -> None:
    first = load_event("api/health")
    first["path"] = "/changed"
    assert load_event("api/health")["path"] == "/health"


def test_an_unfilled_placeholder_is_refused_by_name() -> None:
    with pytest.raises(UnfilledPlaceholder) as info:
        load_event("splitter/s3-put-via-sqs", bucket="b", key="k", size=1, queue_arn="arn")
    assert info.value.missing == ["etag"]
    assert "${etag}" in str(info.value) and "splitter/s3-put-via-sqs" in str(info.value)


def test_a_value_for_no_placeholder_is_refused() -> None:
    with pytest.raises(TypeError, match="bucket_name"):
        load_event("progress/connect", job_id="j", token="t", connection_id="c", bucket_name="b")


def test_a_missing_fixture_names_its_path() -> None:
    with pytest.raises(FileNotFoundError, match=r"events/no/such\.json"):
        load_event("no/such")
    with pytest.raises(ValueError, match="outside"):
        load_event("../pyproject")


def _asl_parameters() -> dict[str, set[str]]:
    asl = json.loads((ROOT / "infra" / "statemachines" / "finalize.asl.json").read_text())
    out: dict[str, set[str]] = {}
    for state in asl["States"].values():
        params: dict[str, Any] | None = state.get("Parameters")
        if state["Type"] == "Task" and params:
            out[params["action"]] = {k.removesuffix(".$") for k in params}
    return out


def test_finalize_task_inputs_have_exactly_what_the_state_machine_passes() -> None:
    by_action = _asl_parameters()
    fixtures = sorted((EVENTS_DIR / "finalize").glob("task-input-*.json"))
    seen = set()
    for path in fixtures:
        event = json.loads(path.read_text())
        assert set(event) == by_action[event["action"]], path.name
        assert isinstance(event["finalize_round"], int)
        seen.add(event["action"])
    assert seen == set(by_action)


@pytest.mark.parametrize(("name", "route", "event_type"), [
    ("progress/connect", "$connect", "CONNECT"),
    ("progress/connect-without-token", "$connect", "CONNECT"),
    ("progress/disconnect", "$disconnect", "DISCONNECT"),
])
def test_websocket_fixtures_have_api_gateway_shape(name: str, route: str, event_type: str) -> None:
    event = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    ctx = event["requestContext"]
    assert (ctx["routeKey"], ctx["eventType"], ctx["messageDirection"]) == (route, event_type, "IN")
    for key in ("connectionId", "connectedAt", "requestTimeEpoch", "domainName", "stage", "apiId", "requestId"):
        assert key in ctx, key
    # API Gateway sends no body on $connect / $disconnect, and the disconnect says why.
    assert "body" not in event and event["isBase64Encoded"] is False
    if route == "$disconnect":
        assert isinstance(ctx["disconnectStatusCode"], int) and ctx["disconnectReason"]
