"""POST /api/batch/add-images (seed 004) → one crop job; GET /api/batch/status/{id} follows it.

Images are named by S3 key (the project bucket) or by URL; URLs come from a throwaway HTTP
server on 127.0.0.1, admitted through the crop worker's private allow-list for the test.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from PIL import Image

from posterflow import aws
from posterflow.crop import worker as crop_worker
from tests import photos
from tests.integration.helpers import api, fetch, wait_for


class _Photos(BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def photo_server() -> Iterator[str]:
    _Photos.files = {"/photos/astronaut.jpg": photos.jpeg(photos.astronaut())}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Photos)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _put(cloud: Any, name: str, data: bytes) -> str:
    key = f"uploads/default/inputs-{uuid.uuid4().hex[:8]}/{name}"
    aws.client("s3").put_object(Bucket=cloud.refs.bucket, Key=key, Body=data)
    return key


def _finished(cloud: Any, batch_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status, body, _ = api(cloud, "GET", f"/api/batch/status/{batch_id}")
        assert status == 200, body
        batch: dict[str, Any] = body["batch"]
        return batch if batch["status"] in ("completed", "completed_with_errors", "failed") else None

    return wait_for(done, timeout=120, interval=0.3, what=f"batch {batch_id} to finish")


def _results(cloud: Any, job_id: str) -> dict[str, dict[str, Any]]:
    status, body, _ = api(cloud, "GET", f"/api/jobs/{job_id}")
    assert status == 200 and body["kind"] == "crop"
    return {r["entity_id"]: r for r in body["results"]}


def _image(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_faces_by_s3_key_are_cropped_to_300_squares(cloud: Any) -> None:
    keys = [_put(cloud, "astronaut.jpg", photos.jpeg(photos.astronaut())),
            _put(cloud, "rotated.jpg", photos.portrait_exif_rotated(6))]
    status, body, _ = api(cloud, "POST", "/api/batch/add-images", {
        "images": [{"s3Key": keys[0], "id": "ada"}, {"key": keys[1], "id": "rotated"}],
        "projectId": "proj-123", "notifyEmail": "ops@example.com"})
    assert status == 202, body
    assert body["success"] is True and body["imageCount"] == 2 and body["queued"] == 2
    batch = _finished(cloud, body["batchId"])
    assert batch["status"] == "completed" and batch["imageCount"] == 2
    assert batch["progress"] == {"processed": 2, "total": 2, "failed": 0, "succeeded": 2, "skipped": 0,
                                 "cancelled": 0}
    assert batch["progressPercent"] == 100.0
    results = _results(cloud, body["batchId"])
    for entity in ("ada", "rotated"):
        face = results[entity]["face"]
        assert results[entity]["status"] == "completed" and face["face_detected"] is True and face["score"] >= 0.8
        assert _image(fetch(results[entity]["url"])).size == (300, 300)
    # The rotated photo was turned upright before detection: the worker saw a 768 x 1024 portrait
    # and the face box lies in the upper half of it.
    rotated = results["rotated"]["face"]
    assert rotated["source"] == [768, 1024]
    assert rotated["box"]["y"] + rotated["box"]["h"] / 2 < 1024 / 2


def test_bad_images_fail_alone_with_their_reasons(cloud: Any, photo_server: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(crop_worker.ENV_PRIVATE_ALLOWLIST, f"{photo_server}/photos/")
    images = {
        "good": _put(cloud, "good.jpg", photos.jpeg(photos.astronaut())),
        "by-url": f"{photo_server}/photos/astronaut.jpg",
        "missing": f"uploads/default/{uuid.uuid4().hex}/nobody.jpg",
        "url-404": f"{photo_server}/photos/gone.jpg",
        "metadata-url": "http://169.254.169.254/latest/meta-data/iam",
        "truncated": _put(cloud, "broken.jpg", photos.truncated_jpeg()),
        "pixel-bomb": _put(cloud, "bomb.png", photos.pixel_bomb_png()),
        "empty": _put(cloud, "empty.jpg", photos.empty()),
    }
    status, body, _ = api(cloud, "POST", "/api/batch/add-images", {
        "images": [{"url": v, "id": k} if "://" in v else {"key": v, "id": k} for k, v in images.items()]})
    assert status == 202, body
    batch = _finished(cloud, body["batchId"])
    assert batch["status"] == "completed_with_errors"
    assert batch["progress"]["processed"] == 8 and batch["progress"]["failed"] == 6
    assert batch["progress"]["succeeded"] == 2
    results = _results(cloud, body["batchId"])
    assert {k for k, r in results.items() if r["status"] == "completed"} == {"good", "by-url"}
    assert results["by-url"]["face"]["face_detected"] is True
    expected = {"missing": "not_found", "url-404": "url_failed", "metadata-url": "url_blocked",
                "truncated": "truncated", "pixel-bomb": "pixel_bomb", "empty": "empty"}
    for entity, reason in expected.items():
        assert results[entity]["status"] == "failed" and results[entity]["error_code"] == reason, results[entity]
        assert results[entity]["error"] and not results[entity]["error"].startswith(reason), results[entity]
    assert "404" in results["url-404"]["error"]


def test_a_url_outside_the_allow_list_fails_its_item(cloud: Any, photo_server: str) -> None:
    # No private allow-list here: loopback is refused like any non-public address.
    status, body, _ = api(cloud, "POST", "/api/batch/add-images",
                          {"images": [f"{photo_server}/photos/astronaut.jpg"]})
    assert status == 202, body
    batch = _finished(cloud, body["batchId"])
    assert batch["progress"]["failed"] == 1
    [result] = _results(cloud, body["batchId"]).values()
    assert result["error_code"] == "url_blocked" and "not allowed" in result["error"]


def test_a_repeated_batch_id_is_the_same_batch(cloud: Any) -> None:
    key = _put(cloud, "astronaut.jpg", photos.jpeg(photos.astronaut()))
    batch_id = f"proj-{uuid.uuid4().hex[:12]}"
    request = {"batchId": batch_id, "images": [key], "options": {"outputSize": 128, "format": "webp"}}
    status, first, _ = api(cloud, "POST", "/api/batch/add-images", request)
    assert status == 202 and first["batchId"] == batch_id
    batch = _finished(cloud, batch_id)
    status, again, _ = api(cloud, "POST", "/api/batch/add-images", request)
    assert status == 200 and again["batchId"] == batch_id and again["queued"] == 0
    assert _finished(cloud, batch_id)["progress"] == batch["progress"]
    [result] = _results(cloud, batch_id).values()
    crop = _image(fetch(result["url"]))
    assert crop.size == (128, 128) and crop.format == "WEBP"
    status, other, _ = api(cloud, "POST", "/api/batch/add-images", {**request, "images": [key, key]})
    assert status == 409 and other["error"]["code"] == "batch_conflict"


def test_an_idempotency_key_makes_a_retry_the_same_batch(cloud: Any) -> None:
    key = _put(cloud, "astronaut.jpg", photos.jpeg(photos.astronaut()))
    headers = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    status, first, _ = api(cloud, "POST", "/api/batch/add-images", {"images": [key]}, headers=headers)
    assert status == 202
    status, again, _ = api(cloud, "POST", "/api/batch/add-images", {"images": [key]}, headers=headers)
    assert status == 202 and again["batchId"] == first["batchId"]
    assert _finished(cloud, first["batchId"])["progress"]["total"] == 1


@pytest.mark.parametrize(("body", "status", "code"), [
    ({}, 422, "validation_error"),
    ({"images": []}, 422, "validation_error"),
    ({"images": [{"key": "a.jpg", "url": "https://example.com/a.jpg"}]}, 422, "validation_error"),
    ({"images": [{"id": "nobody"}]}, 422, "validation_error"),
    ({"images": ["a.jpg"], "options": {"max_pixels": 10**12}}, 422, "validation_error"),
    ({"images": ["a.jpg"], "options": {"size": 5}}, 422, "validation_error"),
    ({"images": ["a.jpg"], "batchId": "../../etc"}, 422, "validation_error"),
    ({"images": ["s3://someone-elses-bucket/a.jpg"]}, 422, "invalid_image"),
    ({"images": ["   "]}, 422, "invalid_image"),
    ({"images": ["a.jpg"] * 10_001}, 413, "too_many_images"),
])
def test_bad_requests_get_4xx_in_the_error_shape(cloud: Any, body: dict[str, Any], status: int, code: str) -> None:
    got, answer, _ = api(cloud, "POST", "/api/batch/add-images", body)
    assert got == status, answer
    assert answer["error"]["code"] == code and answer["error"]["message"]


def test_malformed_json_and_unknown_batch(cloud: Any) -> None:
    status, body, _ = api(cloud, "POST", "/api/batch/add-images", raw=b'{"images": [')
    assert status == 400 and body["error"]["code"] == "malformed_json"
    status, body, _ = api(cloud, "GET", f"/api/batch/status/{uuid.uuid4().hex}")
    assert status == 404 and body["error"]["code"] == "batch_not_found"
