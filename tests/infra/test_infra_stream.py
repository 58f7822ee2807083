"""The job streams on AWS (issue 17): two REST routes streamed (responseTransferMode STREAM) to the
stream function, which runs behind Lambda Web Adapter in response-stream mode; the spec, the
stack and the local cloud's gateway agree on the routes and the function."""

from __future__ import annotations

import json
import os
from typing import Any

from infra_helpers import Synth
from posterflow_infra.apis import STREAM_ROUTES
from posterflow_infra.functions import lwa_layer_arn
from template_views import function_props, logical_id_by_prop, ref_target, resources, role_statements
from test_infra_stack import _rest_paths

from posterflow import config
from posterflow import resources as r
from posterflow.progress import sse

SPEC = r.stack_spec()
STREAM = SPEC.function("stream")


def _stream_methods(t: dict[str, Any]) -> dict[str, dict[str, Any]]:
    paths = _rest_paths(t)
    return {paths[ref_target(m["Properties"]["ResourceId"])]: m["Properties"]
            for m in resources(t, "AWS::ApiGateway::Method").values()
            if paths.get(ref_target(m["Properties"]["ResourceId"]), "").endswith("/stream")}


def test_both_stream_routes_stream_to_the_stream_function_without_a_gateway_key(synth: Synth) -> None:
    t = synth.json
    methods = _stream_methods(t)
    assert set(methods) == {"/api/templates/job/{job_id}/stream", "/api/batch/jobs/{job_id}/stream"}
    stream_lid = logical_id_by_prop(t, "AWS::Lambda::Function", "FunctionName", STREAM.name)
    for path, m in methods.items():
        assert m["HttpMethod"] == "GET" and m["ApiKeyRequired"] is False, path
        integration = m["Integration"]
        assert integration["Type"] == "AWS_PROXY" and integration["ResponseTransferMode"] == "STREAM", path
        uri = json.dumps(integration["Uri"])
        assert "2021-11-15/functions/" in uri and uri.endswith('"/response-streaming-invocations"]]}'), uri
        assert stream_lid in uri
        assert integration["TimeoutInMillis"] == 15 * 60 * 1000
    # API Gateway may invoke the stream function (one permission for the API).
    perms = [p["Properties"] for p in resources(t, "AWS::Lambda::Permission").values()
             if ref_target(p["Properties"]["FunctionName"]) == stream_lid]
    assert perms and all(p["Principal"] == "apigateway.amazonaws.com" for p in perms)


def test_every_other_method_still_goes_to_the_api_function(synth: Synth) -> None:
    t = synth.json
    api_lid = logical_id_by_prop(t, "AWS::Lambda::Function", "FunctionName", SPEC.function("api").name)
    stream_lid = logical_id_by_prop(t, "AWS::Lambda::Function", "FunctionName", STREAM.name)
    methods = [m["Properties"] for m in resources(t, "AWS::ApiGateway::Method").values()]
    streamed = [m for m in methods if stream_lid in json.dumps(m["Integration"])]
    assert len(streamed) == 2
    for m in methods:
        if m not in streamed:
            assert api_lid in json.dumps(m["Integration"]["Uri"])
            assert m["Integration"].get("ResponseTransferMode", "BUFFERED") == "BUFFERED"


def test_the_stream_function_runs_behind_lambda_web_adapter(synth: Synth) -> None:
    props = function_props(synth.json, STREAM.name)
    assert props["Handler"] == "run.sh" and props["Runtime"] == "python3.12"
    env = props["Environment"]["Variables"]
    assert env[config.LAMBDA_EXEC_WRAPPER.name] == "/opt/bootstrap"
    assert env[config.LWA_INVOKE_MODE.name] == "response_stream"
    assert env[config.LWA_PORT.name] == str(r.LWA_PORT)
    assert env[config.LWA_READINESS_CHECK_PATH.name] == r.LWA_READINESS_PATH
    layers = json.dumps(props["Layers"])
    assert lwa_layer_arn("${AWS::Region}").split(":layer:")[1] in layers and "753240598075" in layers
    # Streams end before the function does, and before API Gateway's 15 minutes.
    assert float(config.SSE_MAX_DURATION_S.default or 0) < STREAM.timeout_s <= 15 * 60
    # The asset's start script is executable (the adapter's wrapper runs it).
    assert os.access(STREAM.directory / "run.sh", os.X_OK)


def test_the_stream_function_only_reads(synth: Synth) -> None:
    statements = role_statements(synth.json, STREAM.name)
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not {a for a in actions if a.startswith(("dynamodb:Put", "dynamodb:Update", "dynamodb:Delete",
                                                    "dynamodb:BatchWrite", "s3:Put", "s3:Delete"))}
    gateway = [s for s in statements if "apigateway:GET" in json.dumps(s["Action"])]
    assert len(gateway) == 1
    resources_ = json.dumps(gateway[0]["Resource"])
    assert "::/apikeys" in resources_ and "::/usageplans" in resources_ and "*" not in resources_


def test_spec_stack_and_local_gateway_agree_on_the_stream_routes() -> None:
    assert STREAM.invoke_mode == "response_stream"
    assert [fn.key for fn in SPEC.functions if fn.invoke_mode == "response_stream"] == ["stream"]
    for route in STREAM_ROUTES:
        # The local gateway proxies exactly the paths the stack streams.
        assert sse.route_job_id("/" + route.replace("{job_id}", "job-1")) == "job-1"
    assert sse.route_job_id("/api/templates/job/job-1") is None
    assert {sse.stream_path("j"), sse.stream_path("j", seed="batch")} == {
        "/" + route.replace("{job_id}", "j") for route in STREAM_ROUTES}
