"""The WebSocket API emulation: connect/message/disconnect events and the @connections API."""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from posterflow_local.apigw import ApiGateway
from tests.integration.helpers import wait_for


@pytest.fixture()
def gateway(cloud: Any) -> Any:
    events: list[dict[str, Any]] = []
    lock = threading.Lock()

    def ws_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with lock:
            events.append(event)
        ctx = event["requestContext"]
        if ctx["routeKey"] == "$connect" and (event.get("queryStringParameters") or {}).get("token") != "good":
            return {"statusCode": 403}
        return {"statusCode": 200}

    cloud.register_function("t-ws", ws_handler)
    gw = ApiGateway(cloud.runtime, rest_function="t-ws", ws_function="t-ws", rest_port=0, ws_port=0)
    gw.start()
    gw.events = events  # type: ignore[attr-defined]
    yield gw
    gw.stop()


def test_connect_post_disconnect_gone(gateway: Any) -> None:
    mgmt = boto3.client("apigatewaymanagementapi", endpoint_url=gateway.management_endpoint, region_name="us-east-1")
    with connect(f"{gateway.ws_url}/?job_id=j1&token=good") as ws:
        connect_event = wait_for(lambda: [e for e in gateway.events if e["requestContext"]["routeKey"] == "$connect"],
                                 what="$connect event")[0]
        assert connect_event["queryStringParameters"] == {"job_id": "j1", "token": "good"}
        connection_id = connect_event["requestContext"]["connectionId"]

        mgmt.post_to_connection(ConnectionId=connection_id, Data=json.dumps({"event": "progress", "n": 1}).encode())
        mgmt.post_to_connection(ConnectionId=connection_id, Data=b'{"event": "progress", "n": 2}')
        # Message boundaries are kept: two posts, two frames.
        assert json.loads(ws.recv(timeout=5)) == {"event": "progress", "n": 1}
        assert json.loads(ws.recv(timeout=5)) == {"event": "progress", "n": 2}
        info = mgmt.get_connection(ConnectionId=connection_id)
        assert info["ConnectedAt"].year >= 2024

        ws.send(json.dumps({"action": "subscribe", "job_id": "j2"}))
        routed = wait_for(lambda: [e for e in gateway.events if e["requestContext"]["routeKey"] == "subscribe"],
                          what="subscribe route")
        assert json.loads(routed[0]["body"])["job_id"] == "j2"
        ws.send("not json")
        wait_for(lambda: [e for e in gateway.events if e["requestContext"]["routeKey"] == "$default"],
                 what="$default route")

    wait_for(lambda: [e for e in gateway.events if e["requestContext"]["routeKey"] == "$disconnect"],
             what="$disconnect event")
    with pytest.raises(ClientError) as exc:
        mgmt.post_to_connection(ConnectionId=connection_id, Data=b"late")
    assert exc.value.response["Error"]["Code"] == "GoneException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410


def test_connect_refused_by_function(gateway: Any) -> None:
    with pytest.raises(InvalidStatus) as exc, connect(f"{gateway.ws_url}/?job_id=j1&token=bad"):
        pass
    assert exc.value.response.status_code == 403
