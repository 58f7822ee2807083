"""Face crops: decode a photo cheaply, find faces with OpenCV's YuNet, cut a square.

``crop_photo(data, CropOptions())`` is the whole API for the crop worker; it raises
:class:`PhotoError` with a reason for a photo that cannot be used, and returns a centre crop
with ``face_detected=False`` when there is no face.
"""

from posterflow.crop.cropper import crop_photo, face_square
from posterflow.crop.models import Box, CropOptions, CropResult, PhotoError, Timings

__all__ = ["Box", "CropOptions", "CropResult", "PhotoError", "Timings", "crop_photo", "face_square"]
