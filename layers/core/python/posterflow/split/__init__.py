"""The splitter: uploads and manifests into per-item work, in checkpointed chunks.

:mod:`~posterflow.split.runner` is the run (SQS messages, S3-event start, chunk writer);
each input kind has its module (``csv_input``, ``zip_input``, ``manifest_input``)."""

from posterflow.split.base import SplitFailed
from posterflow.split.runner import handle, upload_metadata

__all__ = ["SplitFailed", "handle", "upload_metadata"]
