"""A write-only S3 object fed chunk by chunk through a multipart upload.

Memory stays at about two parts: one filling, one uploading in a background thread, so the
ZIP writer and the network overlap. A failure aborts the upload, leaving no orphaned parts
(which S3 would otherwise bill until a lifecycle rule cleans them).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
from types import TracebackType
from typing import Any

from posterflow import aws

# S3's minimum part size is 5 MiB (except the last part); 8 MiB keeps the part count far
# under the 10,000-part limit up to 80 GB.
PART_SIZE = 8 * 1024 * 1024


class MultipartWriter:
    def __init__(
        self,
        bucket: str,
        key: str,
        *,
        content_type: str,
        content_disposition: str | None = None,
        part_size: int = PART_SIZE,
    ) -> None:
        self.bucket, self.key, self.part_size = bucket, key, part_size
        self._s3: Any = aws.client("s3")
        extra = {"ContentDisposition": content_disposition} if content_disposition else {}
        self._upload_id: str = self._s3.create_multipart_upload(
            Bucket=bucket, Key=key, ContentType=content_type, **extra
        )["UploadId"]
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._pending: cf.Future[dict[str, Any]] | None = None
        self._pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="multipart")
        self.bytes_written = 0

    def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        self.bytes_written += len(chunk)
        if len(self._buffer) >= self.part_size:
            self._flush()

    def _flush(self) -> None:
        data = bytes(self._buffer)
        self._buffer = bytearray()
        self._wait_pending()
        number = len(self._parts) + 1
        self._pending = self._pool.submit(self._upload_part, number, data)

    def _upload_part(self, number: int, data: bytes) -> dict[str, Any]:
        resp = self._s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=data
        )
        return {"PartNumber": number, "ETag": resp["ETag"]}

    def _wait_pending(self) -> None:
        if self._pending is not None:
            self._parts.append(self._pending.result())
            self._pending = None

    def complete(self) -> None:
        # The last part may be short; an object with no bytes at all still gets one empty part.
        if self._buffer or not self._parts:
            self._flush()
        self._wait_pending()
        self._s3.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
        )
        self._pool.shutdown()

    def abort(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)

    def __enter__(self) -> MultipartWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.complete()
        else:
            # The original error is the one worth reporting; a failed abort only leaves
            # parts for the bucket's lifecycle rule.
            with contextlib.suppress(Exception):
                self.abort()
