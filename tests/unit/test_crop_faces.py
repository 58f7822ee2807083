"""Face detection and crop geometry on real faces (scikit-image's astronaut and cameraman)."""

from __future__ import annotations

import io

import photos
import pytest
from PIL import Image

from posterflow.crop import Box, CropOptions, CropResult, crop_photo, face_square
from posterflow.crop import detector as det

ASTRONAUT_FACE = (178, 63, 90, 113)  # x, y, w, h


def _iou(a: Box, b: Box) -> float:
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / (a.w * a.h + b.w * b.h - inter)


def _inside(inner: Box, outer: Box) -> bool:
    return (
        outer.x <= inner.x
        and outer.y <= inner.y
        and inner.x + inner.w <= outer.x + outer.w
        and inner.y + inner.h <= outer.y + outer.h
    )


def _image(result: CropResult) -> Image.Image:
    img = Image.open(io.BytesIO(result.output))
    img.load()
    return img


def test_astronaut_face_found_inside_the_image() -> None:
    [result] = crop_photo(photos.jpeg())
    assert result.face_detected
    assert result.box is not None and result.score is not None
    assert result.score >= 0.8
    assert _inside(result.box, Box(x=0, y=0, w=512, h=512))
    x, y, w, h = ASTRONAUT_FACE
    assert _iou(result.box, Box(x=x, y=y, w=w, h=h)) > 0.8
    assert result.faces_found == 1 and result.face_rank == 0


def test_crop_is_a_padded_square_around_the_face_with_room_for_hair() -> None:
    [result] = crop_photo(photos.jpeg())
    assert result.box is not None
    crop, face = result.crop_box, result.box
    assert crop.w == crop.h
    assert _inside(face, crop)
    assert _inside(crop, Box(x=0, y=0, w=512, h=512))
    # 20% padding per side around the larger face side, plus 12% of the height above.
    assert crop.w == pytest.approx(face.h * (1 + 0.2 * 2 + 0.12), abs=3)
    above, below = face.y - crop.y, crop.y + crop.h - (face.y + face.h)
    assert above > below


def test_output_is_a_300_px_jpeg() -> None:
    [result] = crop_photo(photos.jpeg())
    img = _image(result)
    assert img.format == "JPEG" and img.size == (300, 300)
    assert (result.width, result.height, result.content_type, result.extension) == (300, 300, "image/jpeg", ".jpg")


def test_size_and_webp_options() -> None:
    [result] = crop_photo(photos.jpeg(), CropOptions(size=128, format="webp", quality=80))
    img = _image(result)
    assert img.format == "WEBP" and img.size == (128, 128)
    assert result.content_type == "image/webp"


def test_cameraman_face_found() -> None:
    [result] = crop_photo(photos.jpeg(photos.camera()))
    assert result.face_detected
    assert result.box is not None and _iou(result.box, Box(x=196, y=113, w=61, h=81)) > 0.7


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_rotated_portrait_face_found_upright(orientation: int) -> None:
    [upright] = crop_photo(photos.jpeg(photos.portrait_upright()))
    [rotated] = crop_photo(photos.portrait_exif_rotated(orientation))
    assert rotated.face_detected
    # Pixels are stored 1024 x 768; after the EXIF turn the photo is a 768 x 1024 portrait and
    # the face sits where it does in the upright original.
    assert (rotated.source_width, rotated.source_height) == (768, 1024)
    assert upright.box is not None and rotated.box is not None
    assert _iou(rotated.box, upright.box) > 0.8


def test_no_face_gives_a_centre_crop_not_an_error() -> None:
    [result] = crop_photo(photos.face_free_jpeg("coffee.png"))
    assert not result.face_detected
    assert result.box is None and result.score is None and result.face_rank is None
    assert result.faces_found == 0
    assert result.crop_box == Box(x=100, y=0, w=400, h=400)
    assert _image(result).size == (300, 300)


def test_all_faces_option_crops_each_face_best_first() -> None:
    data = photos.jpeg(photos.two_faces())
    [best] = crop_photo(data)
    results = crop_photo(data, CropOptions(all_faces=True))
    assert len(results) == 2
    assert [r.face_rank for r in results] == [0, 1]
    assert all(r.faces_found == 2 and r.face_detected for r in results)
    scores = [r.score or 0.0 for r in results]
    assert scores == sorted(scores, reverse=True)
    boxes = [r.box for r in results]
    assert boxes[0] is not None and boxes[1] is not None
    assert {boxes[0].x < 512, boxes[1].x < 512} == {True, False}  # one face in each half
    assert best.box == boxes[0]
    assert crop_photo(data, CropOptions(all_faces=True, max_faces=1))[0].box == boxes[0]


def test_summary_is_json_without_the_bytes() -> None:
    [result] = crop_photo(photos.jpeg())
    summary = result.summary()
    assert "output" not in summary
    assert summary["face_detected"] is True and set(summary["box"]) == {"x", "y", "w", "h"}
    assert set(summary["timings"]) == {"decode_ms", "detect_ms", "crop_ms", "encode_ms", "total_ms"}


# --- geometry -------------------------------------------------------------------------------


def _face(x: float, y: float, w: float, h: float) -> det.Face:
    return det.Face(x=x, y=y, w=w, h=h, score=0.9, landmarks=())


def test_square_is_clamped_at_the_corner() -> None:
    box = face_square(_face(0, 0, 100, 100), 1000, 800)
    assert (box.x, box.y) == (0, 0)
    assert box.w == box.h == round(100 * 1.52)


def test_square_shrinks_to_the_image() -> None:
    box = face_square(_face(10, 10, 380, 280), 400, 300)
    assert box == Box(x=50, y=0, w=300, h=300)


def test_square_at_the_far_edge_stays_inside() -> None:
    box = face_square(_face(950, 750, 60, 60), 1000, 800)
    assert box.x + box.w == 1000 and box.y + box.h == 800


# --- the detector ---------------------------------------------------------------------------


def test_model_ships_in_the_installed_package() -> None:
    path = det.model_path()
    assert path.name == det.MODEL_FILE and path.stat().st_size > 100_000


def test_model_override_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(det.MODEL_ENV, "/nonexistent/yunet.onnx")
    det.model_path.cache_clear()
    try:
        with pytest.raises(det.DetectorUnavailable):
            det.model_path()
    finally:
        monkeypatch.delenv(det.MODEL_ENV)
        det.model_path.cache_clear()


def test_detector_is_loaded_once_per_thread() -> None:
    assert det.get_detector() is det.get_detector()
    assert det.get_detector(640, 0.8) is not det.get_detector(640, 0.5)
