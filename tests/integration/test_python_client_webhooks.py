"""``posterflow_client.webhooks.verify``: valid, tampered, stale, malformed, several ``v1=``;
and agreement with the server's own signer and verifier (``posterflow.tokens``)."""

from __future__ import annotations

import json
import time
import types

import pytest
from posterflow_client import InvalidPayload, InvalidSignature, webhooks

from posterflow import tokens

SECRET = "whsec-test-0123456789"
OTHER = "whsec-other-9876543210"
BODY = json.dumps({"event": "job.completed", "job_id": "j-1", "status": "completed"}, separators=(",", ":")).encode()


def test_valid_signature_returns_the_parsed_body() -> None:
    header = webhooks.sign(BODY, SECRET)
    assert webhooks.verify(BODY, header, SECRET) == {"event": "job.completed", "job_id": "j-1", "status": "completed"}
    assert webhooks.verify(BODY, header, SECRET.encode())["job_id"] == "j-1"  # bytes secret too


def test_server_signed_delivery_verifies_and_server_accepts_ours() -> None:
    now = int(time.time())
    server_header = tokens.webhook_signature(BODY, secret=SECRET.encode(), timestamp=now)
    assert webhooks.verify(BODY, server_header, SECRET)["status"] == "completed"
    tokens.verify_webhook_signature(BODY, webhooks.sign(BODY, SECRET, timestamp=now), secret=SECRET.encode())


@pytest.mark.parametrize("tamper", [
    lambda b: b + b" ",
    lambda b: b.replace(b"completed", b"failed"),
    lambda b: b"",
])
def test_tampered_body_is_refused(tamper: object) -> None:
    header = webhooks.sign(BODY, SECRET)
    with pytest.raises(InvalidSignature) as caught:
        webhooks.verify(tamper(BODY), header, SECRET)  # type: ignore[operator]
    assert caught.value.reason == "mismatch"


def test_wrong_secret_and_edited_timestamp_are_mismatches() -> None:
    t = int(time.time())
    header = webhooks.sign(BODY, SECRET, timestamp=t)
    with pytest.raises(InvalidSignature, match="does not match"):
        webhooks.verify(BODY, header, OTHER)
    edited = header.replace(f"t={t}", f"t={t + 1}")
    with pytest.raises(InvalidSignature) as caught:
        webhooks.verify(BODY, edited, SECRET)
    assert caught.value.reason == "mismatch"


def test_stale_and_future_timestamps_are_refused() -> None:
    now = time.time()
    old = webhooks.sign(BODY, SECRET, timestamp=int(now) - 301)
    with pytest.raises(InvalidSignature) as caught:
        webhooks.verify(BODY, old, SECRET, now=now)
    assert caught.value.reason == "stale"
    future = webhooks.sign(BODY, SECRET, timestamp=int(now) + 400)
    with pytest.raises(InvalidSignature, match="away"):
        webhooks.verify(BODY, future, SECRET, now=now)
    # Within a wider tolerance the same header is fine.
    assert webhooks.verify(BODY, old, SECRET, tolerance_s=600, now=now)["job_id"] == "j-1"


@pytest.mark.parametrize("header", [
    None, "", "garbage", "v1=abc", "t=,v1=abc", "t=abc,v1=00", "t=123", "t=123,v1=", "t=1,t=2,v1=00",
    "t=99999999999999,v1=00", "t=١٢٣,v1=00",
])
def test_malformed_headers_are_refused(header: str | None) -> None:
    with pytest.raises(InvalidSignature) as caught:
        webhooks.verify(BODY, header, SECRET)
    assert caught.value.reason == "malformed"


def test_non_ascii_signature_is_a_mismatch_not_a_crash() -> None:
    header = f"t={int(time.time())},v1=é{'0' * 63}"
    with pytest.raises(InvalidSignature):
        webhooks.verify(BODY, header, SECRET)


def test_any_of_several_v1_matches() -> None:
    """During a rotation the server sends one v1 per secret; a receiver with either verifies."""
    header = tokens.webhook_signature(BODY, secret=[OTHER.encode(), SECRET.encode()])
    assert header.count("v1=") == 2
    assert webhooks.verify(BODY, header, SECRET)["job_id"] == "j-1"
    assert webhooks.verify(BODY, header, OTHER)["job_id"] == "j-1"
    with pytest.raises(InvalidSignature):
        webhooks.verify(BODY, header, "a third secret")
    spaced = header.replace(",", ", ")
    assert webhooks.verify(BODY, spaced, SECRET)["job_id"] == "j-1"


def test_genuine_non_object_body_is_invalid_payload() -> None:
    for body in (b"[1, 2]", b"not json"):
        with pytest.raises(InvalidPayload):
            webhooks.verify(body, webhooks.sign(body, SECRET), SECRET)


def test_parsed_body_is_refused_loudly() -> None:
    with pytest.raises(TypeError, match="raw request body"):
        webhooks.verify(BODY.decode(), webhooks.sign(BODY, SECRET), SECRET)  # type: ignore[arg-type]


def test_verify_request_reads_body_and_header() -> None:
    class Headers(dict[str, str]):
        def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
            return {k.lower(): v for k, v in self.items()}.get(key.lower(), default)

    request = types.SimpleNamespace(body=BODY, headers=Headers({"x-posterflow-signature": webhooks.sign(BODY, SECRET)}))
    assert webhooks.verify_request(request, SECRET)["job_id"] == "j-1"
    request.body = BODY + b"x"
    with pytest.raises(InvalidSignature):
        webhooks.verify_request(request, SECRET)
