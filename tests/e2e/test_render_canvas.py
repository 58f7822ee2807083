"""Fabric.js canvases in the real Chromium: both JSON generations, text fit, print PDFs, the
network policy, and template content that must stay data."""

from __future__ import annotations

import base64
import copy
import io
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops
from pypdf import PdfReader

from posterflow.net.policy import NetPolicy
from posterflow.posters.canvas.errors import TextOverflow
from posterflow.posters.canvas.spec import CanvasOutput, CanvasResult, FilledCanvas, FitRule, ImageFit
from posterflow.render.canvas import CanvasRenderer
from posterflow.render.engine import INTERNAL_ORIGIN, EngineConfig, RenderEngine, RenderRequest
from posterflow.render.errors import CanvasLoadFailed, CanvasSourceRefused, RenderTimeout, UnknownObjectType
from posterflow.render.sizes import UnsupportedSize, resolve_size
from tests.e2e.conftest import RED_PNG, Servers

pytestmark = pytest.mark.browser

RED_DATA_URL = "data:image/png;base64," + base64.b64encode(RED_PNG).decode()
RECIPIENT = "Jane Q. Recipient"
ADDRESS = f"{RECIPIENT}\n1234 Long Avenue Name\nSpringfield, IL 62704"
W, H = 400, 300


def _fabric5() -> dict[str, Any]:
    """What Fabric 5.3's canvas.toJSON() writes: lowercase types, styles as an object."""
    common = {"version": "5.3.0", "originX": "left", "originY": "top", "scaleX": 1, "scaleY": 1, "angle": 0,
              "opacity": 1, "visible": True, "strokeWidth": 0, "stroke": None, "flipX": False, "flipY": False}
    return {
        "version": "5.3.0",
        "background": "#ffffff",
        "objects": [
            {**common, "type": "rect", "left": 300, "top": 20, "width": 80, "height": 60, "fill": "#ff0000",
             "rx": 0, "ry": 0},
            {**common, "type": "textbox", "left": 20, "top": 20, "width": 260, "height": 60, "fill": "#000000",
             "text": ADDRESS, "fontSize": 40, "fontFamily": "DejaVu Sans", "fontWeight": "normal",
             "fontStyle": "normal", "lineHeight": 1.16, "textAlign": "left", "styles": {}, "minWidth": 20,
             "splitByGrapheme": False, "charSpacing": 0, "underline": False, "overline": False,
             "linethrough": False},
            {**common, "type": "image", "left": 300, "top": 200, "width": 40, "height": 40, "src": RED_DATA_URL,
             "crossOrigin": None, "cropX": 0, "cropY": 0, "filters": []},
            {**common, "type": "group", "left": 20, "top": 220, "width": 60, "height": 60, "objects": [
                {**common, "type": "circle", "left": -30, "top": -30, "radius": 30, "fill": "#0000ff",
                 "width": 60, "height": 60, "startAngle": 0, "endAngle": 360},
            ]},
        ],
    }


def _fabric6() -> dict[str, Any]:
    """The same design as Fabric 6/7's toJSON() writes it: class names, styles as an array."""
    data = _fabric5()
    data["version"] = "6.9.1"
    names = {"rect": "Rect", "textbox": "Textbox", "image": "Image", "group": "Group", "circle": "Circle"}

    def rename(obj: dict[str, Any]) -> None:
        obj["type"] = names[obj["type"]]
        obj["version"] = "6.9.1"
        if obj["type"] == "Textbox":
            obj["styles"] = []
        for child in obj.get("objects", []):
            rename(child)

    for obj in data["objects"]:
        rename(obj)
    return data


def _canvas(json: dict[str, Any], **kwargs: Any) -> FilledCanvas:
    return FilledCanvas(canvas_json=json, width=W, height=H, **kwargs)


def _one(engine: RenderEngine, canvas: FilledCanvas) -> CanvasResult:
    [result] = CanvasRenderer(engine, timeout_s=15).render_canvases([canvas])
    if isinstance(result, Exception):
        raise result
    return result


def _image(result: CanvasResult) -> Image.Image:
    image = Image.open(io.BytesIO(result.data))
    assert image.size == (result.width, result.height)
    return image.convert("RGB")


def _dark_rows(image: Image.Image, x0: int, x1: int) -> list[int]:
    """Rows with text-dark pixels between columns x0 and x1."""
    return [y for y in range(image.height) if any(sum(image.getpixel((x, y))) < 200 for x in range(x0, x1))]  # type: ignore[arg-type]


@pytest.mark.parametrize("make", [_fabric5, _fabric6], ids=["fabric5", "fabric6"])
@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_both_generations_render_png_at_canvas_size_times_scale(
    engine: RenderEngine, make: Any, scale: float
) -> None:
    result = _one(engine, _canvas(make(), output=CanvasOutput(scale=scale)))
    assert result.data.startswith(b"\x89PNG") and result.content_type == "image/png"
    image = _image(result)
    assert image.size == (round(W * scale), round(H * scale))
    s = scale
    assert image.getpixel((int(340 * s), int(50 * s))) == (255, 0, 0)  # the rect
    r, g, b = image.getpixel((int(320 * s), int(220 * s)))  # type: ignore[misc]  # the image
    assert r > 200 and g < 60 and b < 60
    r, g, b = image.getpixel((int(50 * s), int(250 * s)))  # type: ignore[misc]  # the circle in its group
    assert b > 200 and r < 60
    assert _dark_rows(image, int(20 * s), int(280 * s)), "the text was not drawn"


def test_fabric5_and_fabric6_json_draw_the_same_pixels(engine: RenderEngine) -> None:
    five = _image(_one(engine, _canvas(_fabric5())))
    six = _image(_one(engine, _canvas(_fabric6())))
    assert ImageChops.difference(five, six).getbbox() is None


@pytest.mark.parametrize(("fmt", "magic"), [("jpeg", b"\xff\xd8\xff"), ("webp", b"RIFF")])
def test_jpeg_and_webp(engine: RenderEngine, fmt: str, magic: bytes) -> None:
    result = _one(engine, _canvas(_fabric6(), output=CanvasOutput(format=fmt, scale=1.5)))
    assert result.data.startswith(magic)
    assert _image(result).size == (600, 450)


def test_text_shrinks_to_fit_its_box(engine: RenderEngine) -> None:
    box_bottom = 20 + 60
    unfitted = _image(_one(engine, _canvas(_fabric5())))
    assert max(_dark_rows(unfitted, 20, 280)) > box_bottom + 10, "the designed size must overflow for this test"
    fitted = _image(_one(engine, _canvas(_fabric5(), fit=[FitRule(index=1, min_scale=0.4)])))
    rows = _dark_rows(fitted, 20, 290)
    assert rows and max(rows) <= box_bottom + 2
    # Shrunk, not cut: all three lines are there (three separate bands of text rows).
    bands = 1 + sum(1 for a, b in itertools.pairwise(rows) if b - a > 1)
    assert bands >= 3


def test_text_that_cannot_fit_is_text_overflow(engine: RenderEngine) -> None:
    canvas = _canvas(_fabric6(), fit=[FitRule(index=1, min_scale=0.9, field="address")])
    [result] = CanvasRenderer(engine).render_canvases([canvas])
    assert isinstance(result, TextOverflow)
    assert result.code == "text_overflow"
    assert result.index == 1 and result.field == "address"
    assert "address" in str(result) and result.details["box"] == [260, 60]


def test_one_overflow_fails_alone(engine: RenderEngine) -> None:
    good = _canvas(_fabric5(), fit=[FitRule(index=1, min_scale=0.3)])
    bad = _canvas(_fabric5(), fit=[FitRule(index=1, min_scale=1.0)])
    results = CanvasRenderer(engine).render_canvases([good, bad, good])
    assert isinstance(results[1], TextOverflow)
    assert all(isinstance(r, CanvasResult) for r in (results[0], results[2]))


def _pdf(result: CanvasResult) -> PdfReader:
    assert result.data.startswith(b"%PDF-") and result.content_type == "application/pdf"
    return PdfReader(io.BytesIO(result.data))


def test_pdf_is_the_postcard_paper_with_vector_text(engine: RenderEngine) -> None:
    postcard = FilledCanvas(canvas_json=_fabric6(), width=1800, height=1200,
                            output=CanvasOutput(format="pdf", size="postcard-6x4"))
    reader = _pdf(_one(engine, postcard))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert float(box.width) == pytest.approx(432, abs=0.2) and float(box.height) == pytest.approx(288, abs=0.2)
    # The wrapped lines come out as separate lines of text.
    text = " ".join(reader.pages[0].extract_text().split())
    assert RECIPIENT in text and "1234 Long Avenue Name" in text
    # The image is in the print too (waited for before printing), at its own pixels.
    assert [image.image.size for image in reader.pages[0].images if image.image] == [(40, 40)]


@pytest.mark.parametrize(("size", "points"), [("postcard-9x6", (648, 432)), ("a4-landscape", (842, 595)),
                                               ("letter", (612, 792))])
def test_pdf_presets(engine: RenderEngine, size: str, points: tuple[float, float]) -> None:
    reader = _pdf(_one(engine, _canvas(_fabric5(), output=CanvasOutput(format="pdf", size=size))))
    box = reader.pages[0].mediabox
    assert (float(box.width), float(box.height)) == pytest.approx(points, abs=0.6)
    assert len(reader.pages) == 1


def test_bleed_grows_the_page_on_every_side(engine: RenderEngine) -> None:
    bleed = FilledCanvas(canvas_json=_fabric5(), width=1800, height=1200,
                         output=CanvasOutput(format="pdf", size="postcard-6x4", bleed_mm=3))
    result = _one(engine, bleed)
    box = _pdf(result).pages[0].mediabox
    grow = 2 * 3 / 25.4 * 72  # 3 mm on each side, in points
    assert float(box.width) == pytest.approx(432 + grow, abs=0.2)
    assert float(box.height) == pytest.approx(288 + grow, abs=0.2)
    assert RECIPIENT in " ".join(_pdf(result).pages[0].extract_text().split())
    assert (result.width, result.height) == (599, 407)  # CSS pixels of the page


def test_pdf_without_a_size_is_the_canvas_at_96_dpi(engine: RenderEngine) -> None:
    box = _pdf(_one(engine, _canvas(_fabric5(), output=CanvasOutput(format="pdf")))).pages[0].mediabox
    # Chromium keeps a page's sides to ~0.1 pt (0.04 mm).
    assert (float(box.width), float(box.height)) == pytest.approx((W * 0.75, H * 0.75), abs=0.2)


def test_image_refused_by_the_network_policy(engine: RenderEngine, servers: Servers) -> None:
    data = _fabric6()
    data["objects"][2]["src"] = f"{servers.forbidden.url}/logo.png"
    [result] = CanvasRenderer(engine).render_canvases([_canvas(data)])
    assert isinstance(result, CanvasSourceRefused)
    assert result.code == "url_blocked" and servers.forbidden.url in str(result)
    assert servers.forbidden.requests == []


def test_allow_listed_image_loads_through_the_router(engine: RenderEngine, servers: Servers) -> None:
    data = _fabric6()
    data["objects"][2]["src"] = f"{servers.assets.url}/canvas-logo.png"
    image = _image(_one(engine, _canvas(data)))
    r, g, b = image.getpixel((320, 220))  # type: ignore[misc]
    assert r > 200 and g < 60 and b < 60
    assert "/canvas-logo.png" in servers.assets.requests


def test_image_covers_its_box(engine: RenderEngine) -> None:
    wide = io.BytesIO()
    picture = Image.new("RGB", (300, 100), (0, 200, 0))
    picture.paste((255, 0, 0), (100, 0, 200, 100))  # red middle third, green sides
    picture.save(wide, "PNG")
    data = _fabric6()
    data["objects"][2].update(src="data:image/png;base64," + base64.b64encode(wide.getvalue()).decode(),
                              left=300, top=200, width=80, height=80)
    image = _image(_one(engine, _canvas(data, images=[ImageFit(index=2)])))
    # Scaled to the box's height (80/100), centred: the red middle fills the 80x80 box but the edges.
    for x, y in ((302, 202), (340, 240), (377, 277)):
        r, g, _ = image.getpixel((x, y))  # type: ignore[misc]
        assert r > 200 and g < 60, (x, y)
    assert image.getpixel((385, 240)) == (255, 255, 255)  # nothing outside the box


def test_covered_image_keeps_its_clip_path_on_the_box(engine: RenderEngine) -> None:
    wide = io.BytesIO()
    Image.new("RGB", (300, 100), (255, 0, 0)).save(wide, "PNG")
    data = _fabric6()
    data["objects"][2].update(src="data:image/png;base64," + base64.b64encode(wide.getvalue()).decode(),
                              left=300, top=200, width=80, height=80,
                              clipPath={"type": "Circle", "radius": 40, "left": -40, "top": -40, "strokeWidth": 0})
    image = _image(_one(engine, _canvas(data, images=[ImageFit(index=2)])))
    # A round photo of radius 40 centred on the box: red 36 px from the centre, not at the corners.
    for x, y in ((340, 240), (376, 240), (340, 204)):
        r, g, _ = image.getpixel((x, y))  # type: ignore[misc]
        assert r > 200 and g < 60, (x, y)
    assert image.getpixel((302, 202)) == (255, 255, 255)


def test_unknown_object_type(engine: RenderEngine) -> None:
    data = _fabric5()
    data["objects"].append({"type": "sparkles", "left": 0, "top": 0})
    [result] = CanvasRenderer(engine).render_canvases([_canvas(data)])
    assert isinstance(result, UnknownObjectType)
    assert result.code == "unknown_object_type" and "sparkles" in str(result) and "objects[4]" in str(result)


def test_template_content_never_runs_as_script(engine: RenderEngine, servers: Servers) -> None:
    beacon = f"{servers.assets.url}/pwned"
    payloads = [
        f"<img src=x onerror=\"new Image().src='{beacon}-1.png'\">",
        f"</tspan></text><script>new Image().src='{beacon}-2.png'</script>",
        f"]]><svg onload=\"new Image().src='{beacon}-3.png'\"/>",
    ]
    data = _fabric6()
    data["objects"][1].update(text=RECIPIENT + "\n" + "\n".join(payloads), fontSize=6)
    # Keys that would replace the object's methods stay data (the object still draws).
    data["objects"][0].update({"render": f"new Image().src='{beacon}-4.png'", "toSVG": "x", "__proto__": {"a": 1}})
    data.update({"renderAll": "x", "toSVG": "x", "constructor": "x"})
    big = copy.deepcopy(data)
    for canvas in (_canvas(data), FilledCanvas(canvas_json=big, width=W, height=H,
                                                output=CanvasOutput(format="pdf", size="postcard-6x4"))):
        result = _one(engine, canvas)
        if result.format == "pdf":
            text = _pdf(result).pages[0].extract_text()
            assert "<script>" in text and RECIPIENT in " ".join(text.split())
        else:
            assert _image(result).getpixel((370, 70)) == (255, 0, 0)
    assert not [r for r in servers.assets.requests if "pwned" in r]


def test_an_image_that_never_arrives_times_out_and_the_next_canvas_renders(
    engine: RenderEngine, servers: Servers
) -> None:
    data = _fabric6()
    data["objects"][2]["src"] = f"{servers.hang.url}/never.png"
    [result] = CanvasRenderer(engine, timeout_s=2).render_canvases([_canvas(data)])
    assert isinstance(result, RenderTimeout)
    assert _image(_one(engine, _canvas(_fabric6()))).getpixel((340, 50)) == (255, 0, 0)


def test_html_templates_never_get_the_engine_files(engine: RenderEngine) -> None:
    html = (f"<img src='{INTERNAL_ORIGIN}/canvas.html'><link rel=stylesheet href='{INTERNAL_ORIGIN}/fabric.min.js'>"
            f"<iframe src='{INTERNAL_ORIGIN}/canvas.html'></iframe>")
    result = engine.render(RenderRequest(html=html, size=resolve_size(width=200, height=100), timeout_s=10))
    assert result.blocked_urls
    assert all(b.startswith(INTERNAL_ORIGIN) and "not an engine file" in b for b in result.blocked_urls)


@pytest.mark.parametrize(("size", "points"), [("postcard-6x4", (432, 288)), ("a4-landscape", (842, 595))])
def test_print_presets_are_exact_paper_for_html_templates_too(
    engine: RenderEngine, size: str, points: tuple[float, float]
) -> None:
    html = f"<html><body style='margin:0'><p>{RECIPIENT}</p></body></html>"
    result = engine.render(RenderRequest(html=html, format="pdf", size=resolve_size(size), timeout_s=10))
    reader = PdfReader(io.BytesIO(result.data))
    box = reader.pages[0].mediabox
    assert (float(box.width), float(box.height)) == pytest.approx(points, abs=0.2)
    assert len(reader.pages) == 1 and RECIPIENT in reader.pages[0].extract_text()


def test_a_raster_over_the_pixel_limit_fails_alone(engine: RenderEngine) -> None:
    huge = FilledCanvas(canvas_json=_fabric5(), width=5000, height=5000, output=CanvasOutput(scale=4))
    results = CanvasRenderer(engine).render_canvases([huge, _canvas(_fabric5())])
    assert isinstance(results[0], UnsupportedSize) and results[0].code == "unsupported_output"
    assert isinstance(results[1], CanvasResult)


def test_a_canvas_fabric_cannot_load_fails_with_fabrics_message(engine: RenderEngine) -> None:
    data = _fabric5()
    data["objects"][2]["src"] = "data:image/png;base64," + base64.b64encode(b"not a png" * 100).decode()
    [result] = CanvasRenderer(engine).render_canvases([_canvas(data)])
    assert isinstance(result, CanvasLoadFailed)
    assert result.code == "canvas_load_failed" and "Error loading" in str(result)
    assert len(str(result)) < 400  # the data: URL Fabric quotes is cut


@pytest.mark.parametrize("kind", ["i-text", "IText", "text", "Text"])
def test_a_single_line_text_shrinks_to_its_designed_width(engine: RenderEngine, kind: str) -> None:
    data = _fabric5()
    data["objects"][1] = {"type": kind, "left": 20, "top": 20, "width": 200, "height": 46, "fontSize": 40,
                          "fontFamily": "DejaVu Sans", "fill": "#000000", "text": "Maximilian Oberhauser-Long"}
    fitted = _image(_one(engine, _canvas(data, fit=[FitRule(index=1, min_scale=0.3)])))
    columns = [x for x in range(W) if any(sum(fitted.getpixel((x, y))) < 200 for y in range(20, 70))]  # type: ignore[arg-type]
    assert columns and min(columns) >= 20 and max(columns) <= 222
    [result] = CanvasRenderer(engine).render_canvases([_canvas(data, fit=[FitRule(index=1, min_scale=0.95)])])
    assert isinstance(result, TextOverflow) and result.details["box"] == [200, 46]


def test_html_and_canvas_pages_are_pooled_apart() -> None:
    """A canvas after an HTML poster does not close the HTML page (nor the reverse): each kind
    keeps up to `pages` pages, so mixed batches do not reopen pages."""
    html = RenderRequest(html=f"<p>{RECIPIENT}</p>", size=resolve_size(width=200, height=100))
    with RenderEngine(EngineConfig(pages=1, policy=NetPolicy([]))) as fresh:
        fresh.render(html)
        [html_page] = [s.page for s in fresh.async_engine._idle]
        renderer = CanvasRenderer(fresh)
        renderer.render_canvas(_canvas(_fabric5()))
        [canvas_page] = [s.page for s in fresh.async_engine._idle if s.key[3] == "canvas"]
        fresh.render(html)
        renderer.render_canvas(_canvas(_fabric6()))
        idle = {s.key[3]: s.page for s in fresh.async_engine._idle}
        assert idle == {"html": html_page, "canvas": canvas_page}


def test_json_written_by_fabric_5_and_7_renders_the_same(engine: RenderEngine) -> None:
    """``tests/e2e/data/canvas.fabric{5,7}.toJSON.json``: the same design built and exported with
    ``canvas.toJSON()`` by the real Fabric 5.3.0 and 7.4.0 browser bundles (npm), one textbox, a
    rect and a group holding a circle. The renderer's Fabric 6 loads both to the same pixels."""
    data = Path(__file__).parent / "data"
    five, seven = (
        _image(_one(engine, _canvas(json.loads((data / f"canvas.fabric{version}.toJSON.json").read_text()))))
        for version in ("5", "7")
    )
    assert ImageChops.difference(five, seven).getbbox() is None
    assert five.getpixel((340, 50)) == (255, 0, 0)  # the rect
    r, _, b = five.getpixel((50, 250))  # type: ignore[misc]  # the circle in its group
    assert b > 200 and r < 60
    assert _dark_rows(five, 20, 280)


def test_every_shape_of_fabric_5_and_7_json_renders(engine: RenderEngine) -> None:
    """``tests/e2e/data/canvas-shapes.fabric{5,7}.toJSON.json``: one design exported by the real
    Fabric 5.3.0 and 7.4.0 bundles — an i-text with per-character styles, a line, a polygon, a
    path, an ellipse, a triangle, an image with a grayscale filter, a centred textbox with a
    styled character, a rotated group of rects. Both render the same pixels except the line,
    whose position Fabric 5 exported half its stroke off (Fabric 5 itself draws it there too),
    and both print with their texts as text."""
    data = Path(__file__).parent / "data"
    rasters, texts = [], []
    for version in ("5", "7"):
        canvas_json = json.loads((data / f"canvas-shapes.fabric{version}.toJSON.json").read_text())
        png, pdf = CanvasRenderer(engine, timeout_s=15).render_canvases(
            [_canvas(canvas_json), _canvas(canvas_json, output=CanvasOutput(format="pdf"))]
        )
        assert isinstance(png, CanvasResult) and isinstance(pdf, CanvasResult)
        rasters.append(_image(png))
        texts.append(" ".join(_pdf(pdf).pages[0].extract_text().split()))
    five, seven = rasters
    assert ImageChops.difference(five, seven).getbbox() == (10, 58, 202, 64)  # the line only
    r, g, b = five.getpixel((14, 20))  # type: ignore[misc]  # the "H" styled red
    assert r > 200 and g < 80 and b < 80
    r, g, b = five.getpixel((220, 100))  # type: ignore[misc]  # the image, grayscale-filtered
    assert r == g == b and 60 < r < 120
    assert texts[0] == texts[1] == "Hello Ada Ship to: Jane Q. Recipient"
