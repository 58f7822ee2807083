"""Canvas templates rendered through the REST API on the local cloud (seed 002): a batch of
postcards with address, QR and photo mappings whose QR codes decode from the output PNGs, rows
that fail alone naming why (a missing mapped field, a refused image source, a QR value too long,
an address that cannot fit its box), and the same template through generate, generate-async,
bulk CSV, preview, a print PDF and an inline (``mode: auto``) mailing with its merged PDF."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from posterflow import aws, config
from tests.integration.helpers import api, fetch, wait_for

EVENTS = Path(__file__).resolve().parents[2] / "events" / "templates"
QR_BOX = (660, 340, 200, 200)  # left, top, width, height of object 4 in the postcards
PHOTO_BOX = (600, 40, 260, 260)
ADDRESS_BOX = (40, 376, 420, 150)


def _upload(cloud: Any, name: str) -> str:
    body = json.loads((EVENTS / name).read_text())
    body["section"] = f"{body['section']}-{uuid.uuid4().hex[:6]}"
    status, created, _ = api(cloud, "POST", "/api/templates/upload", body)
    assert status == 201, created
    return f"{body['section']}_latest"


@pytest.fixture(scope="module")
def postcard(cloud: Any) -> str:
    return _upload(cloud, "postcard.fabric6.json")


@pytest.fixture(scope="module")
def photo(cloud: Any) -> str:
    """A photo the default tenant owns: a blue square."""
    buf = io.BytesIO()
    Image.new("RGB", (400, 300), (30, 60, 200)).save(buf, "PNG")
    key = f"uploads/default/canvas-{uuid.uuid4().hex[:8]}/photo.png"
    aws.client("s3").put_object(Bucket=config.bucket(), Key=key, Body=buf.getvalue())
    return f"s3://{config.bucket()}/{key}"


def row(n: int, source: str, **over: Any) -> dict[str, Any]:
    data = {"recipient_id": f"r{n}", "name": f"Recipient {n}", "address": f"{n} Main Street\nApt {n}\nSpringfield",
            "offer_url": f"https://example.com/offer/{n}?c=spring", "photo": source, "first_name": f"R{n}",
            "offer_code": f"CODE{n}", "expires": "June 30"}
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


def decode_qr(image: Image.Image) -> str:
    left, top, width, height = QR_BOX
    crop = np.array(image.convert("L").crop((left - 10, top - 10, left + width + 10, top + height + 10)))
    value, _, _ = cv2.QRCodeDetector().detectAndDecode(crop)
    return str(value)


def ink_bands(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    """Runs of rows with dark pixels inside ``box``: the lines of text drawn there."""
    left, top, width, height = box
    gray = np.array(image.convert("L").crop((left, top, left + width, top + height)))
    inked = (gray < 128).any(axis=1)
    return int(np.count_nonzero(inked[1:] & ~inked[:-1]) + int(inked[0]))


def _finished(cloud: Any, job_id: str, total: int) -> dict[str, Any]:
    def done() -> Any:
        _, body, _ = api(cloud, "GET", f"/api/jobs/{job_id}")
        return body if body.get("processed_items") == total else None

    job: dict[str, Any] = wait_for(done, timeout=120, interval=0.5, what="canvas batch to finish")
    return job


def test_a_batch_renders_qr_address_and_photo_and_bad_rows_fail_alone(cloud: Any, postcard: str,
                                                                       photo: str) -> None:
    items = [row(n, photo) for n in range(3)]
    items.append(row(3, photo, address=None))  # a mapped field missing
    items.append(row(4, photo, photo="s3://another-bucket/uploads/default/x.png"))  # a refused source
    items.append(row(5, photo, offer_url="https://example.com/" + "q" * 3000))  # too long for a QR code
    items.append(row(6, photo, address="\n".join(f"Line {i}" for i in range(40))))  # cannot fit its box
    other = photo.replace("/uploads/default/", "/uploads/someone-else/")
    items.append(row(7, photo, photo=other))  # another tenant's object in the same bucket
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {"template_id": postcard, "items": items})
    assert status == 202, body
    job = _finished(cloud, body["job_id"], len(items))
    assert (job["success_count"], job["failure_count"]) == (3, 5), job
    by_entity = {r["entity_id"]: r for r in job["results"]}

    for n in range(3):
        result = by_entity[f"r{n}"]
        assert result["status"] == "completed", result
        image = Image.open(io.BytesIO(fetch(result["url"])))
        assert image.format == "PNG" and image.size == (900, 600)
        assert decode_qr(image) == f"https://example.com/offer/{n}?c=spring"
        # The photo covers its box, clipped to the designed circle; the three address lines are three lines.
        rgb = image.convert("RGB")
        r, g, b = rgb.getpixel((PHOTO_BOX[0] + 130, PHOTO_BOX[1] + 130))
        assert b > 150 and r < 80, (r, g, b)
        r, g, b = rgb.getpixel((PHOTO_BOX[0] + 130 + 110, PHOTO_BOX[1] + 130))  # inside the 130 px radius
        assert b > 150 and r < 80, (r, g, b)
        r, g, b = rgb.getpixel((PHOTO_BOX[0] + 8, PHOTO_BOX[1] + 8))  # outside the circle: the background
        assert r > 200 and b > 180, (r, g, b)
        assert ink_bands(image, ADDRESS_BOX) == 3

    missing = by_entity["r3"]
    assert missing["status"] == "failed" and missing["error_code"] == "missing_placeholders"
    assert "address" in missing["error"]
    refused = by_entity["r4"]
    assert refused["status"] == "failed" and refused["error_code"] == "overlay_refused", refused
    assert "'photo'" in refused["error"] and "s3://another-bucket/uploads/default/x.png" in refused["error"]
    too_long = by_entity["r5"]
    assert too_long["status"] == "failed" and too_long["error_code"] == "qr_too_long"
    assert "offer_url" in too_long["error"]
    overflow = by_entity["r6"]  # never cut off silently
    assert overflow["status"] == "failed" and overflow["error_code"] == "text_overflow", overflow
    assert "'address'" in overflow["error"]
    foreign = by_entity["r7"]
    assert foreign["status"] == "failed" and foreign["error_code"] == "overlay_refused" and other in foreign["error"]


def test_sync_generate_and_its_bad_input(cloud: Any, photo: str) -> None:
    template_id = _upload(cloud, "postcard.fabric5.json")  # the Fabric 5 spelling renders too
    status, body, _ = api(cloud, "POST", "/api/generate", {"template_id": template_id,
                                                           "custom_data": row(7, photo), "format": "jpeg"})
    assert status == 200, body
    image = Image.open(io.BytesIO(fetch(body["url"])))
    assert image.format == "JPEG" and image.size == (900, 600)
    assert decode_qr(image) == "https://example.com/offer/7?c=spring"
    status, body, _ = api(cloud, "POST", "/api/generate", {"template_id": template_id,
                                                           "custom_data": row(8, photo, name=None, expires=None)})
    assert status == 422 and body["error"]["code"] == "missing_placeholders"
    assert body["error"]["details"]["missing"] == ["expires", "name"]
    status, body, _ = api(cloud, "POST", "/api/generate", {
        "template_id": template_id, "custom_data": row(9, photo, offer_url="x" * 2400)})
    assert status == 422 and body["error"]["code"] == "qr_too_long"


def test_generate_async_and_bulk_csv(cloud: Any, postcard: str, photo: str) -> None:
    status, body, _ = api(cloud, "POST", "/api/generate-async", {"template_id": postcard,
                                                                 "custom_data": row(11, photo)})
    assert status == 202, body
    job = _finished(cloud, body["job_id"], 1)
    assert job["success_count"] == 1, job
    image = Image.open(io.BytesIO(fetch(job["results"][0]["url"])))
    assert decode_qr(image) == "https://example.com/offer/11?c=spring"

    # A CSV's quoted cell keeps its line breaks: a two-line address.
    csv_text = ("recipient_id,name,address,offer_url,photo,first_name,offer_code,expires\n"
                f'c1,Ann Smith,"5 High St\nLeeds",https://example.com/c/1,{photo},Ann,A1,July\n'
                f"c2,Bob Jones,,https://example.com/c/2,{photo},Bob,B2,July\n")
    status, body, _ = api(cloud, "POST", "/api/generate-bulk", {"bulkMethod": "csv", "csvData": csv_text,
                                                                "template_id": postcard})
    assert status == 202, body
    job = _finished(cloud, body["job_id"], 2)
    by_entity = {r["entity_id"]: r for r in job["results"]}
    assert by_entity["c1"]["status"] == "completed", by_entity
    image = Image.open(io.BytesIO(fetch(by_entity["c1"]["url"])))
    assert decode_qr(image) == "https://example.com/c/1" and ink_bands(image, ADDRESS_BOX) == 2
    # An empty address is a value (as in HTML); the row still renders.
    assert by_entity["c2"]["status"] == "completed" and ink_bands(
        Image.open(io.BytesIO(fetch(by_entity["c2"]["url"]))), ADDRESS_BOX) == 0


def test_preview_fills_the_samples(cloud: Any, postcard: str) -> None:
    status, body, headers = api(cloud, "GET", f"/api/templates/{postcard}/preview")
    assert status == 200 and headers["X-Template-Version"] == "1"
    image = Image.open(io.BytesIO(body))
    assert image.size == (900, 600) and decode_qr(image) == "https://example.com"
    assert ink_bands(image, ADDRESS_BOX) == 2  # the address sample has two lines


def test_a_print_pdf_at_a_postcard_preset_with_bleed(cloud: Any, postcard: str, photo: str) -> None:
    from pypdf import PdfReader

    status, body, _ = api(cloud, "POST", "/api/generate", {
        "template_id": postcard, "custom_data": row(21, photo), "format": "pdf", "size": "postcard-6x4",
        "bleed_mm": 3})
    assert status == 200, body
    reader = PdfReader(io.BytesIO(fetch(body["url"])))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    points = [round(float(v) * 25.4 / 72, 1) for v in (box.width, box.height)]
    assert points == [152.4 + 6, 101.6 + 6]
    assert "Recipient 21" in reader.pages[0].extract_text()  # text kept as text, not pixels


def test_a_small_mailing_answers_inline_with_a_merged_pdf(cloud: Any, postcard: str, photo: str) -> None:
    from pypdf import PdfReader

    items = [row(30 + n, photo) for n in range(3)] + [row(33, photo, offer_url="z" * 2400)]
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {
        "template_id": postcard, "items": items, "mode": "auto", "format": "pdf", "size": "postcard-6x4",
        "merge_pdf": True})
    assert status == 200 and body["inline"] is True, body
    assert (body["success_count"], body["failure_count"]) == (3, 1)
    results = {r["entity_id"]: r for r in body["results"]}
    assert results["r33"]["error_code"] == "qr_too_long"

    def merged() -> Any:
        _, job, _ = api(cloud, "GET", f"/api/jobs/{body['job_id']}")
        return job.get("merged_pdf_url")

    reader = PdfReader(io.BytesIO(fetch(wait_for(merged, timeout=120, interval=0.5, what="the merged PDF"))))
    # Succeeded items in input order; the failed one is listed in the manifest, not in the PDF.
    assert [page.extract_text().count(f"Recipient {30 + n}") for n, page in enumerate(reader.pages)] == [1, 1, 1]


def test_at_scale_2_the_photo_keeps_its_clip_circle(cloud: Any, postcard: str, photo: str) -> None:
    status, body, _ = api(cloud, "POST", "/api/generate", {"template_id": postcard, "custom_data": row(40, photo),
                                                           "scale": 2})
    assert status == 200, body
    image = Image.open(io.BytesIO(fetch(body["url"]))).convert("RGB")
    assert image.size == (1800, 1200)
    cx, cy = (PHOTO_BOX[0] + 130) * 2, (PHOTO_BOX[1] + 130) * 2
    # The photo is prepared at 2x (520 px) and drawn at half scale: its clip circle must not shrink with it.
    for x, y in ((cx, cy), (cx + 220, cy), (cx, cy - 220)):
        r, _, b = image.getpixel((x, y))
        assert b > 150 and r < 80, (x, y, r, b)
    r, _, b = image.getpixel((PHOTO_BOX[0] * 2 + 16, PHOTO_BOX[1] * 2 + 16))
    assert r > 200 and b > 180, (r, b)
