"""The request-body gate: encoding, JSON syntax, nesting depth and number range, before the resolver."""

from __future__ import annotations

import base64
import json
from typing import Any, cast

import pytest

from posterflow.api import body
from posterflow.api.app import build, normalise_event
from posterflow.api.errors import ApiError

NO_CONTEXT = cast(Any, None)  # the resolver reads nothing from the Lambda context


def event(raw: str | None, *, content_type: str | None = "application/json", b64: bool = False,
          method: str = "POST", path: str = "/api/generate-batch") -> dict[str, Any]:
    headers = {"Content-Type": content_type} if content_type is not None else {}
    return {"httpMethod": method, "path": path, "resource": "/{proxy+}", "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()}, "queryStringParameters": None,
            "pathParameters": {"proxy": path.lstrip("/")}, "requestContext": {"stage": "prod", "path": path},
            "body": raw, "isBase64Encoded": b64}


def rejected(ev: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as info:
        body.gate(ev)
    return info.value


def answer(ev: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """What the API answers for ``ev`` (the gate's error, or the resolver's)."""
    normalised = normalise_event(ev)
    if isinstance(normalised, dict):
        resp = build().resolve(normalised, NO_CONTEXT)
        return resp["statusCode"], json.loads(resp["body"])
    return normalised.status_code, json.loads(str(normalised.body))


def batch(value: str) -> str:
    return '{"template_id": "t_latest", "items": [{"a": ' + value + "}]}"


# ---- encoding ------------------------------------------------------------------------------

@pytest.mark.parametrize("content_type", ["application/json", None, "text/plain"])
def test_replacement_character_from_api_gateway_is_invalid_encoding(content_type: str | None) -> None:
    # API Gateway passes a non-binary body as text, each byte that is not UTF-8 becoming U+FFFD.
    raw = b'{"template_id": "\xff\xfe"}'.decode("utf-8", "replace")
    exc = rejected(event(raw, content_type=content_type))
    assert (exc.status, exc.code) == (400, "invalid_encoding")
    assert exc.details["position"] == raw.index("\ufffd") and exc.details["encoding"] == "utf-8"
    assert "UTF-8" in exc.message


def test_lone_surrogate_is_invalid_encoding() -> None:
    # A direct invoke can carry "\udcff" (JSON-escaped surrogates decode to lone ones).
    exc = rejected(event('{"a": "x\udcff"}'))
    assert (exc.status, exc.code, exc.details["position"]) == (400, "invalid_encoding", 8)


@pytest.mark.parametrize("content_type", ["application/json", None, "application/x-www-form-urlencoded"])
def test_base64_text_body_that_is_not_utf8_is_invalid_encoding(content_type: str | None) -> None:
    raw = base64.b64encode(b'{"template_id": "\xff"}').decode()
    exc = rejected(event(raw, content_type=content_type, b64=True))
    assert (exc.status, exc.code, exc.details["position"]) == (400, "invalid_encoding", 17)


def test_base64_forms_and_zips_pass_through() -> None:
    raw = base64.b64encode(b"PK\x03\x04\xff\xfe" + b"[" * 5000).decode()
    for content_type in ("multipart/form-data; boundary=x", "application/zip"):
        ev = event(raw, content_type=content_type, b64=True)
        assert body.gate(ev) is ev
        assert normalise_event(ev) == ev  # untouched: no JSON content type forced on it


@pytest.mark.parametrize("content_type", ["application/octet-stream", "image/png", "text/plain"])
def test_other_base64_bodies_must_be_utf8(content_type: str) -> None:
    # The stack's */* base64-encodes every body: no route reads these types as bytes.
    raw = base64.b64encode(b"\x89PNG\r\n\x1a\n\xff\xfe").decode()
    exc = rejected(event(raw, content_type=content_type, b64=True))
    assert (exc.status, exc.code, exc.details["position"]) == (400, "invalid_encoding", 0)


@pytest.mark.parametrize("content_type", ["application/json", None, "application/x-www-form-urlencoded",
                                          "text/plain"])
def test_base64_body_is_decoded_to_the_text_event(content_type: str | None) -> None:
    text = '{"template_id": "t_latest", "items": [{"name": "Zoë — 東京"}]}'
    ev = event(base64.b64encode(text.encode()).decode(), content_type=content_type, b64=True)
    normalised = normalise_event(ev)
    assert isinstance(normalised, dict)
    assert (normalised["body"], normalised["isBase64Encoded"]) == (text, False)
    assert normalised["headers"]["Content-Type"] == "application/json"  # JSON whatever the type
    assert body.json_body(normalised["body"]) == json.loads(text)  # the gate's parse, reused
    assert ev["isBase64Encoded"] is True and ev["body"] != text  # the caller's event is left alone


def test_base64_body_through_the_resolver() -> None:
    raw = base64.b64encode(b'{"section": "x"}').decode()
    status, payload = answer(event(raw, path="/api/templates/upload", b64=True))
    assert status == 422 and payload["error"]["code"] == "validation_error"  # JSON, validated
    status, payload = answer(event(base64.b64encode(b"name=Ada").decode(), content_type="text/plain",
                                   path="/api/generate", b64=True))
    assert status == 415 and payload["error"]["code"] == "unsupported_media_type"


def test_base64_size_is_the_decoded_size() -> None:
    fits = base64.b64encode(b'"' + b"x" * (body.MAX_BODY_BYTES - 2) + b'"').decode()
    assert len(fits) > body.MAX_BODY_BYTES  # the encoded text is over 6 MB, the body is not
    body.gate(event(fits, b64=True))
    over = base64.b64encode(b'"' + b"x" * (body.MAX_BODY_BYTES - 1) + b'"').decode()
    exc = rejected(event(over, b64=True))
    assert (exc.status, exc.code) == (413, "payload_too_large")
    exc = rejected(event(over, content_type="application/zip", b64=True))  # bytes too
    assert (exc.status, exc.code) == (413, "payload_too_large")


def test_base64_json_body_gets_the_json_checks() -> None:
    raw = base64.b64encode(b"[" * 100 + b"]" * 100).decode()
    exc = rejected(event(raw, b64=True))
    assert (exc.status, exc.code) == (422, "too_deep")


def test_plain_non_ascii_text_passes() -> None:
    ev = event('{"template_id": "t_latest", "items": [{"name": "Zoë — 東京 🎉"}]}')
    body.gate(ev)
    assert body.json_body(ev["body"]) == {"template_id": "t_latest", "items": [{"name": "Zoë — 東京 🎉"}]}


# ---- JSON syntax ---------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ['{"template_id": ', "{not json", "[1, 2", '{"a": 1} x'])
def test_malformed_json(raw: str) -> None:
    exc = rejected(event(raw, content_type="application/x-www-form-urlencoded"))  # JSON whatever the type
    assert (exc.status, exc.code) == (400, "malformed_json")
    assert {"error", "line", "column", "position"} <= set(exc.details)


def test_json_content_type_makes_any_body_json() -> None:
    exc = rejected(event("abc"))
    assert (exc.status, exc.code) == (400, "malformed_json")
    exc = rejected(event("1" + "0" * 5000, content_type=None))  # no type: Powertools reads it as JSON
    assert (exc.status, exc.code) == (422, "number_out_of_range")


def test_text_that_is_not_json_with_another_type_is_left_to_the_resolver() -> None:
    body.gate(event("name=a&b=c", content_type="application/x-www-form-urlencoded"))
    body.gate(event("1e400 plain text", content_type="text/plain"))


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_not_json(literal: str) -> None:
    exc = rejected(event(batch(literal)))
    assert (exc.status, exc.code, exc.details["literal"]) == (400, "malformed_json", literal)
    assert "null" in exc.message


# ---- depth ---------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["[" * 100_000, "[" * 100_000 + "]" * 100_000,
                                 '{"custom_data": ' + '{"a": ' * 10_000 + "1" + "}" * 10_001])
def test_very_deep_json_is_too_deep(raw: str) -> None:
    exc = rejected(event(raw))
    assert (exc.status, exc.code, exc.details["max_depth"]) == (422, "too_deep", body.MAX_DEPTH)


def test_depth_limit_is_exact_and_names_the_path() -> None:
    def nested(levels: int) -> str:  # levels of containers in all, the outer object included
        return '{"custom_data": ' + '{"a": ' * (levels - 2) + "[1]" + "}" * (levels - 2) + "}"

    body.gate(event(nested(body.MAX_DEPTH)))
    exc = rejected(event(nested(body.MAX_DEPTH + 1)))
    assert (exc.status, exc.code) == (422, "too_deep")
    assert exc.details["path"] == ["custom_data"] + ["a"] * (body.MAX_DEPTH - 1)


# ---- numbers -------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["1" + "0" * 5000, "-" + "9" * 4400, "1" + "0" * 38, "-" + "9" * 39,
                                   "1e308", "-1e308", "1e400", "-1e400", "1e126", "1e-200", "-1e-131",
                                   "1" + "0" * 400 + ".5"])
def test_numbers_dynamodb_cannot_store_are_out_of_range(value: str) -> None:
    exc = rejected(event(batch(value)))
    assert (exc.status, exc.code) == (422, "number_out_of_range")
    assert exc.details["max_int_digits"] == 38
    assert exc.details["min_magnitude"] == 1e-130 and exc.details["max_magnitude"] == 1e126
    if len(value) < 4300:  # Python refuses longer integers before we can say where they are
        assert exc.details["path"] == ["items", 0, "a"]


@pytest.mark.parametrize("value", ["9" * 38, "-" + "9" * 38, "0", "-0", "0.0", "1.5", "-2.25e-3", "1e-130",
                                   "-1e-130", "9.999999999999998e125", "-9.999999999999998e125", "1e125",
                                   "0.1", "true", "null", '"1e400"', '"' + "9" * 5000 + '"'])
def test_numbers_dynamodb_stores_pass(value: str) -> None:
    ev = event(batch(value))
    body.gate(ev)
    assert body.json_body(ev["body"]) == json.loads(batch(value))


def test_top_level_scalar_number_is_checked() -> None:
    exc = rejected(event("1e400"))
    assert (exc.status, exc.code, exc.details["path"]) == (422, "number_out_of_range", [])


# ---- size ----------------------------------------------------------------------------------

def test_over_6_mb_stays_a_413() -> None:
    exc = rejected(event('{"a": "' + "x" * body.MAX_BODY_BYTES + '"}'))
    assert (exc.status, exc.code) == (413, "payload_too_large")


# ---- through normalise_event and the resolver ------------------------------------------------

def test_gate_errors_come_back_in_the_error_shape() -> None:
    status, payload = answer(event("[" * 100_000))
    assert status == 422
    assert set(payload["error"]) == {"code", "message", "details"} and payload["error"]["code"] == "too_deep"


def test_body_parsed_by_the_gate_is_the_one_the_resolver_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    app, parsed, real = build(), [], json.loads

    def loads(text: str, *args: Any, **kwargs: Any) -> Any:
        parsed.append(text)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(json, "loads", loads)
    # Valid JSON that fails validation: the resolver answers 422 without touching AWS.
    normalised = normalise_event(event('{"section": "x"}', path="/api/templates/upload",
                                       content_type="application/x-www-form-urlencoded"))
    assert isinstance(normalised, dict)
    resp = app.resolve(normalised, NO_CONTEXT)
    monkeypatch.undo()
    assert resp["statusCode"] == 422 and json.loads(resp["body"])["error"]["code"] == "validation_error"
    assert parsed == ['{"section": "x"}']  # parsed once, by the gate


def test_cached_body_is_used_once_and_only_for_the_same_text() -> None:
    ev = event('{"a": [1, 2]}')
    body.gate(ev)
    first = body.json_body(ev["body"])
    assert first == {"a": [1, 2]}
    again = body.json_body(ev["body"])  # the cache is spent: a fresh parse, not the same object
    assert again == first and again is not first
    assert body.json_body('{"b": 1}') == {"b": 1}


def test_empty_and_missing_bodies_pass() -> None:
    for raw in (None, ""):
        body.gate(event(raw))
    status, payload = answer(event(None, method="GET", path="/health", content_type=None))
    assert status == 200 and payload["status"] == "ok"
