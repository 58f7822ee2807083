"""Filling a canvas template per item (seed 002): text mappings keep line breaks, placeholders
in every text object, missing fields named, image mappings cover their box, qr mappings become
crisp QR images that decode, and what fails an item fails it with its reason."""

from __future__ import annotations

import base64
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from posterflow.errors import Reason
from posterflow.posters import qr
from posterflow.posters.canvas import fill, model
from posterflow.posters.canvas.errors import CanvasError, QrTooLong
from posterflow.posters.canvas.spec import CanvasOutput
from posterflow.posters.errors import PosterError
from posterflow.posters.templating import MissingPlaceholders

EVENTS = Path(__file__).resolve().parents[2] / "events" / "templates"

ROW = {"Name": "Ada Lovelace", "address": "12 Rue de la Paix\r\n75002 Paris\nFrance", "offer_url":
       "https://example.com/offer?id=42", "photo": "s3://bucket/uploads/t/p.png", "first_name": "Ada",
       "offer_code": "SPRING", "expires": "May 1"}


def template(name: str = "postcard.fabric6.json") -> model.CanvasTemplate:
    body = json.loads((EVENTS / name).read_text())
    return model.validate(body["canvas_json"], body["width"], body["height"],
                          [model.VariableMapping(**m) for m in body["variable_mappings"]])


def png(size: tuple[int, int], color: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def decode_data_url(url: str) -> bytes:
    return base64.b64decode(url.split(",", 1)[1])


def rasterize_qr_svg(svg: str, module_px: int = 6) -> np.ndarray:
    """Draw the SVG's module runs (our own path shape) with Pillow: what the renderer draws."""
    size = int(re.search(r'viewBox="0 0 (\d+) \d+"', svg).group(1))  # type: ignore[union-attr]
    img = Image.new("L", (size * module_px, size * module_px), 255)
    from PIL import ImageDraw

    draw = ImageDraw.Draw(img)
    for x, y, w in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\d+z", svg):
        x0, y0 = int(x) * module_px, int(y) * module_px
        draw.rectangle([x0, y0, x0 + int(w) * module_px - 1, y0 + module_px - 1], fill=0)
    return np.array(img)


@pytest.mark.parametrize("name", ["postcard.fabric5.json", "postcard.fabric6.json"])
def test_a_row_fills_every_mapping_and_placeholder(name: str) -> None:
    fetched: list[tuple[str, str]] = []

    def fetch(source: str, what: str) -> bytes:
        fetched.append((source, what))
        return png((640, 480))

    filled = fill.fill(template(name), ROW, fetch=fetch, output=CanvasOutput(scale=2))
    objects = filled.canvas_json["objects"]
    assert objects[2]["text"] == "Ada Lovelace"  # keys match case-insensitively, as in HTML templates
    assert objects[3]["text"] == "12 Rue de la Paix\n75002 Paris\nFrance"  # line breaks kept, normalised
    assert objects[1]["text"] == "Hello Ada, your spring offer is here"
    assert objects[6]["objects"][1]["text"] == "Use code SPRING before May 1"  # inside a group
    assert fetched == [("s3://bucket/uploads/t/p.png", "image for 'photo'")]
    # Text that must fit: the mapped ones (named) and the filled top-level one.
    assert [(r.index, r.field, r.min_scale) for r in filled.fit] == [(1, None, 0.5), (2, "name", 0.5),
                                                                     (3, "address", 0.5)]
    assert (filled.width, filled.height, filled.output.scale) == (900, 600, 2)
    # The template itself is untouched (versions are immutable, and cached).
    assert template(name).canvas_json["objects"][2]["text"] == "Recipient Name"


def test_an_image_mapping_covers_its_box_at_output_pixels() -> None:
    filled = fill.fill(template(), ROW, fetch=lambda s, w: png((640, 480)), output=CanvasOutput(scale=2))
    photo = filled.canvas_json["objects"][5]
    assert photo["type"] == "Image" and (photo["left"], photo["top"]) == (600, 40)
    # Cropped to the box's proportions (square) at 2x: drawn over the 260x260 box exactly.
    assert (photo["width"], photo["height"]) == (520, 520)
    assert photo["width"] * photo["scaleX"] == pytest.approx(260)
    assert photo["height"] * photo["scaleY"] == pytest.approx(260)
    with Image.open(io.BytesIO(decode_data_url(photo["src"]))) as img:
        assert img.size == (520, 520)
    assert [i.index for i in filled.images] == [5]
    # The photo's circular clip path stays the designed circle on the canvas.
    clip = photo["clipPath"]
    assert clip["radius"] == 130 and clip["scaleX"] * photo["scaleX"] == pytest.approx(1)
    assert clip["scaleY"] * photo["scaleY"] == pytest.approx(1) and (clip["left"], clip["top"]) == (0, 0)


def test_a_qr_mapping_becomes_a_crisp_image_that_decodes() -> None:
    filled = fill.fill(template("postcard.fabric5.json"), ROW, fetch=lambda s, w: png((10, 10)))
    code = filled.canvas_json["objects"][4]
    assert code["type"] == "image" and code["imageSmoothing"] is False
    assert (code["left"], code["top"], code["width"] * code["scaleX"], code["height"] * code["scaleY"]) == (
        660, 340, 200, 200)
    svg = decode_data_url(code["src"]).decode()
    assert 'shape-rendering="crispEdges"' in svg and 'width="200" height="200"' in svg
    value, _, _ = cv2.QRCodeDetector().detectAndDecode(rasterize_qr_svg(svg))
    assert value == ROW["offer_url"]


def test_qr_codes_keep_the_quiet_zone_and_level_m() -> None:
    svg = qr.qr_svg("HELLO")
    size = int(re.search(r'viewBox="0 0 (\d+)', svg).group(1))  # type: ignore[union-attr]
    runs = [(int(x), int(y), int(w)) for x, y, w in re.findall(r"M(\d+) (\d+)h(\d+)", svg)]
    assert size == 21 + 2 * qr.QUIET_ZONE  # version 1 at level M holds "HELLO"
    assert min(x for x, _, _ in runs) == qr.QUIET_ZONE and min(y for _, y, _ in runs) == qr.QUIET_ZONE
    assert max(x + w for x, _, w in runs) == size - qr.QUIET_ZONE


def test_a_missing_field_fails_the_item_naming_every_one() -> None:
    row = {k: v for k, v in ROW.items() if k not in ("address", "offer_code")}
    with pytest.raises(MissingPlaceholders) as info:
        fill.fill(template(), row, fetch=lambda s, w: png((10, 10)))
    assert info.value.names == ["address", "offer_code"] and info.value.reason == Reason.MISSING_PLACEHOLDERS
    # An empty text is a value (as in HTML); an empty image source or QR value is not.
    with pytest.raises(MissingPlaceholders) as info:
        fill.fill(template(), {**ROW, "address": "", "photo": ""}, fetch=lambda s, w: png((10, 10)))
    assert info.value.names == ["photo"]
    # columns: only the listed ones count.
    with pytest.raises(MissingPlaceholders, match="name"):
        fill.fill(template(), ROW, columns=["address", "offer_url", "photo", "first_name", "offer_code", "expires"],
                  fetch=lambda s, w: png((10, 10)))


def test_a_refused_or_broken_image_fails_naming_the_field_and_source() -> None:
    def refuse(source: str, what: str) -> bytes:
        raise PosterError(Reason.OVERLAY_REFUSED, f"{what} source is another tenant's object")

    with pytest.raises(CanvasError) as info:
        fill.fill(template(), ROW, fetch=refuse)
    assert info.value.reason == Reason.OVERLAY_REFUSED
    assert "'photo'" in info.value.message and "s3://bucket/uploads/t/p.png" in info.value.message
    assert info.value.details == {"field": "photo", "source": "s3://bucket/uploads/t/p.png", "index": 5}
    with pytest.raises(CanvasError) as info:
        fill.fill(template(), ROW, fetch=lambda s, w: b"not an image at all")
    assert info.value.reason == Reason.OVERLAY_FAILED and "not a usable image" in info.value.message


def test_a_qr_value_too_long_fails_the_item() -> None:
    with pytest.raises(QrTooLong) as info:
        fill.fill(template(), {**ROW, "offer_url": "https://example.com/" + "x" * 3000},
                  fetch=lambda s, w: png((10, 10)))
    assert info.value.reason == Reason.QR_TOO_LONG and info.value.details["field"] == "offer_url"
    assert "qr for 'offer_url'" in info.value.message


def test_text_is_bounded_and_styles_are_dropped_with_new_text() -> None:
    t = template()
    with pytest.raises(CanvasError) as info:
        fill.fill(t, {**ROW, "name": "x" * (fill.MAX_TEXT_CHARS + 1)}, fetch=lambda s, w: png((10, 10)))
    assert info.value.reason == Reason.TEXT_OVERFLOW and "'name'" in info.value.message
    styled = {"type": "i-text", "text": "Hi {{who}}", "styles": {"0": {"0": {"fill": "red"}}}}
    doc: dict[str, Any] = {"objects": [styled]}
    filled = fill.fill(model.validate(doc, 100, 50, []), {"who": "you"})
    assert filled.canvas_json["objects"][0] == {"type": "i-text", "text": "Hi you", "styles": {}}


def test_the_html_helper_draws_the_same_code() -> None:
    from posterflow.posters import templating

    html = templating.render_html('<img src="{{ qr(offer_url) }}">', {"offer_url": ROW["offer_url"]})
    url = re.search(r'src="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    assert url == qr.qr_data_url(ROW["offer_url"])
    with pytest.raises(templating.TemplateError) as info:
        templating.render_html("{{ qr(v) }}", {"v": "x" * 3000})
    assert info.value.reason == Reason.QR_TOO_LONG
    assert [p.name for p in templating.extract_placeholders("{{ qr(offer_url) }}")] == ["offer_url"]


def test_the_html_helper_keeps_to_the_render_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    from posterflow.posters import templating

    # Distinct large values: each encoding is slow, so the clock is read before each one.
    monkeypatch.setattr(templating, "RENDER_BUDGET_S", 0.3)
    loop = "{% for i in range(1000) %}{{ qr(v ~ i) }}{% endfor %}"
    started = time.perf_counter()
    with pytest.raises(templating.TemplateTimeout):
        templating.render_html(loop, {"v": "y" * 2000})
    # Checked every 32 calls instead, the first look at the clock would come after ~3 s.
    assert time.perf_counter() - started < 1.5


def test_a_pixel_bomb_is_refused_before_decoding_and_pillow_is_left_alone() -> None:
    buf = io.BytesIO()
    Image.new("1", (8000, 8000)).save(buf, "PNG")  # 64 MP, a few KB
    with pytest.raises(CanvasError) as info:
        fill.fill(template(), ROW, fetch=lambda s, w: buf.getvalue())
    assert info.value.reason == Reason.OVERLAY_FAILED and "is over 50000000 pixels" in info.value.message
    # Pillow's own default stays: the crop worker's and the overlays' limits are their own.
    assert Image.MAX_IMAGE_PIXELS == 1024 * 1024 * 1024 // 4 // 3


def test_a_shared_photo_is_prepared_once() -> None:
    calls: list[str] = []
    photo = png((300, 200), "green")

    def fetch(source: str, what: str) -> bytes:
        calls.append(source)
        return photo

    first = fill.fill(template(), ROW, fetch=fetch)
    second = fill.fill(template(), {**ROW, "name": "Someone else"}, fetch=fetch)
    assert len(calls) == 2  # each item reads its source (it may have changed) …
    # … and the same bytes give the same prepared image.
    assert first.canvas_json["objects"][5]["src"] == second.canvas_json["objects"][5]["src"]
