"""The REST API passes binary bodies intact both ways (binary media types) and answers a body over
API Gateway's 10 MB in the API's error shape, both from the resource spec the local gateway uses."""

from __future__ import annotations

import json

from infra_helpers import Synth
from template_views import resources

from posterflow import resources as r
from posterflow_local import apigw

SPEC = r.stack_spec()


def test_rest_api_declares_every_type_binary(synth: Synth) -> None:
    (api,) = resources(synth.json, "AWS::ApiGateway::RestApi").values()
    declared = api["Properties"]["BinaryMediaTypes"]
    # */*: API Gateway decodes a base64 answer (a preview) only when the request's first Accept
    # type matches, and browsers, curl and the Python client all send different ones; multipart
    # ZIP uploads reach the function base64-encoded and intact (so does every other body).
    assert declared == ["*/*"]
    # One value for both: the local gateway encodes and decodes by exactly these.
    assert tuple(declared) == SPEC.api_binary_media_types == apigw.BINARY_MEDIA_TYPES


def test_request_too_large_gateway_response_has_the_error_shape_and_the_hint(synth: Synth) -> None:
    found = [g["Properties"] for g in resources(synth.json, "AWS::ApiGateway::GatewayResponse").values()
             if g["Properties"]["ResponseType"] == "REQUEST_TOO_LARGE"]
    assert len(found) == 1
    props = found[0]
    assert props["StatusCode"] == "413"
    body = json.loads(props["ResponseTemplates"]["application/json"])
    assert body == SPEC.api_too_large_error
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == "payload_too_large" and "POST /api/uploads" in body["error"]["message"]
    assert body["error"]["details"]["max_bytes"] == SPEC.api_max_request_bytes == 10 * 1024 * 1024
    # The gateway response belongs to the deployed REST API.
    (api_id,) = resources(synth.json, "AWS::ApiGateway::RestApi")
    assert props["RestApiId"] == {"Ref": api_id}
