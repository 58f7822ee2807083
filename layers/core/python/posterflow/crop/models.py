"""Options, results and the one error of the face-crop library (pydantic, JSON-friendly)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from posterflow.crop.errors import PhotoError as PhotoError

MiB = 1024 * 1024


class CropOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    size: int = Field(default=300, ge=16, le=4096, description="output width and height in pixels")
    format: Literal["jpeg", "webp"] = "jpeg"
    quality: int = Field(default=90, ge=1, le=100)
    all_faces: bool = Field(default=False, description="one crop per face instead of the best face only")
    max_faces: int = Field(default=20, ge=1, le=1000)
    padding: float = Field(default=0.20, ge=0, le=3, description="margin around the face, per side, x face size")
    hair: float = Field(default=0.12, ge=0, le=3, description="extra margin above the face, x face height")
    min_score: float = Field(default=0.8, gt=0, le=1)
    detect_size: int = Field(default=640, ge=64, le=4096, description="long side the detector sees")
    min_decode_side: int = Field(default=1000, ge=64, description="reduced decoding keeps the long side >= this")
    max_pixels: int = Field(default=100_000_000, ge=1, description="refuse larger images before decoding")
    max_bytes: int = Field(default=100 * MiB, ge=1)


class Box(BaseModel):
    """A rectangle in the source photo's pixels, upright (after EXIF orientation)."""

    model_config = ConfigDict(frozen=True)

    x: int
    y: int
    w: int
    h: int


class Timings(BaseModel):
    """Milliseconds. Decode and detect are per photo, so every crop of one photo shares them."""

    model_config = ConfigDict(frozen=True)

    decode_ms: float
    detect_ms: float
    crop_ms: float
    encode_ms: float
    total_ms: float


class CropResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    face_detected: bool
    face_rank: int | None = Field(description="0 for the best face; None for a centre crop")
    box: Box | None = Field(description="the face, in source pixels")
    score: float | None
    crop_box: Box = Field(description="the square cut from the source")
    faces_found: int
    width: int
    height: int
    source_width: int
    source_height: int
    source_format: str
    content_type: str
    extension: str
    output: bytes = Field(repr=False)
    timings: Timings

    def summary(self) -> dict[str, Any]:
        """Everything but the image bytes, JSON-safe (for the job item and the manifest)."""
        return self.model_dump(mode="json", exclude={"output"})
