"""Template JavaScript through the REST API: off unless the deployment allows it, and even with
it on a template's script cannot write to the bucket (the probe: PUT/copy into ``assets/``)."""

from __future__ import annotations

import io
import os
import uuid
from typing import Any

import pytest
from PIL import Image

from posterflow import aws
from posterflow import resources as r
from tests.integration.helpers import api

ENV = "POSTERFLOW_TEMPLATE_JAVASCRIPT"


def _red_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (255, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


def _template(html: str, *, javascript: bool) -> dict[str, Any]:
    return {"section": f"js-{uuid.uuid4().hex[:6]}", "name": "js", "html_content": html,
            "width": 300, "height": 200, "format": "png", "javascript": javascript}


def _asset_keys(bucket: str) -> list[str]:
    listed = aws.client("s3").list_objects_v2(Bucket=bucket, Prefix="assets/")
    return sorted(o["Key"] for o in listed.get("Contents", []))


def _sync_xhr(method: str, url: str, *, body: str = "null", header: tuple[str, str] | None = None) -> str:
    # Synchronous, so the load event (and the capture) waits until the request was decided.
    set_header = f"x.setRequestHeader('{header[0]}', '{header[1]}');" if header else ""
    return (f"try {{ const x = new XMLHttpRequest(); x.open('{method}', '{url}', false); {set_header}"
            f"x.send({body}); }} catch (e) {{}}")


def test_javascript_templates_are_refused_by_default(cloud: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    status, body, _ = api(cloud, "POST", "/api/templates/upload", _template("<p>x</p>", javascript=True))
    assert status == 422 and body["error"]["code"] == "javascript_disabled", body
    assert ENV in body["error"]["message"]

    status, body, _ = api(cloud, "POST", "/api/templates/upload", _template("<p>x</p>", javascript=False))
    assert status == 201, body
    status, body, _ = api(cloud, "PUT", f"/api/templates/{body['template_id']}",
                          {"html_content": "<p>y</p>", "javascript": True})
    assert status == 422 and body["error"]["code"] == "javascript_disabled", body


def test_script_cannot_put_or_copy_into_the_asset_bucket(
    cloud: Any, aws_stack: r.ResourceRefs, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The local cloud's handlers run in this process and read the setting per call.
    monkeypatch.setenv(ENV, "allow")
    bucket = aws_stack.bucket
    source = f"assets/other-{uuid.uuid4().hex[:6]}/secret.png"
    aws.client("s3").put_object(Bucket=bucket, Key=source, Body=_red_png(), ContentType="image/png")
    assets = f"{os.environ['AWS_ENDPOINT_URL'].rstrip('/')}/{bucket}/assets"
    probe = uuid.uuid4().hex[:8]
    script = (
        "<div>{{ name }}</div><script>"
        + _sync_xhr("PUT", f"{assets}/{probe}-put.png", body="'overwritten'")
        + _sync_xhr("PUT", f"{assets}/{probe}-copy.png", header=("x-amz-copy-source", f"/{bucket}/{source}"))
        + _sync_xhr("POST", f"{assets}/{probe}-post.png?uploads", body="'x'")
        + "</script>"
        f"<img src='{assets}/{probe}-copy.png'>"
    )
    status, body, _ = api(cloud, "POST", "/api/templates/upload", _template(script, javascript=True))
    assert status == 201, body
    before = _asset_keys(bucket)

    status, body, _ = api(cloud, "POST", "/api/generate",
                          {"template_id": body["template_id"], "custom_data": {"name": "Ada"}})

    assert status == 200, body
    assert _asset_keys(bucket) == before
    blocked = " ".join(body["blocked_urls"])
    assert f"{assets}/{probe}-put.png: method PUT is not allowed" in blocked, blocked
    assert f"{assets}/{probe}-copy.png: method PUT is not allowed" in blocked, blocked
    assert f"{assets}/{probe}-post.png?uploads: method POST is not allowed" in blocked, blocked
