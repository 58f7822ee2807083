"""The results archive: every succeeded output plus the manifests, streamed into one ZIP in S3.

Nothing holds the archive: outputs are fetched a few at a time (a bounded read-ahead window,
because one GET at a time leaves the link idle), each is stored uncompressed (posters are
already-compressed images), and the ZIP bytes go straight into a multipart upload. Memory is
the read-ahead window plus two upload parts, whatever the job's size.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
import zlib
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from stream_zip import NO_COMPRESSION_64, ZIP_64, MemberFile, stream_zip

from posterflow import aws, config, jobs, tenancy
from posterflow.finalize.manifest import ManifestRow, ManifestWriter, member_name
from posterflow.finalize.multipart import MultipartWriter
from posterflow.resources import stack_spec

READ_AHEAD = 16
FETCH_THREADS = 8
# Outputs up to this size are fetched whole (size and CRC known, so stored without a data
# descriptor); larger ones are streamed and deflated, keeping memory bounded.
WHOLE_FETCH_MAX = 16 * 1024 * 1024
_FILE_MODE = 0o100644


class ArchiveError(Exception):
    """The archive cannot be built (an output is missing): finalize marks the job failed.
    The class name is the error name the state machine's Catch sees."""


@dataclass(frozen=True)
class ArchiveResult:
    key: str
    files: int
    manifest_rows: int
    bytes: int
    seconds: float
    reused: bool = False

    @property
    def manifest_only(self) -> bool:
        return self.files == 0


def archive_key(tenant: str, job_id: str, finalize_round: int) -> str:
    """Deterministic, so a re-run overwrites (or reuses) the same object; under the tenant's
    ``archives/<tenant>/`` like every key written for it."""
    suffix = "" if finalize_round == 0 else f"-r{finalize_round}"
    return tenancy.scoped_key(stack_spec().bucket.archives_prefix, tenant, f"{job_id}/results{suffix}.zip")


def download_file_name(job: jobs.Job) -> str:
    base = "".join(c if c.isalnum() or c in "-_" else "-" for c in (job.name or "posterflow"))[:60].strip("-")
    return f"{base or 'posterflow'}-{job.job_id[:8]}.zip"


def existing_archive(job: jobs.Job, key: str) -> bool:
    """The archive of this round was completed and recorded by an earlier run."""
    if job.archive_key != key:
        return False
    try:
        aws.client("s3").head_object(Bucket=config.bucket(), Key=key)
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def build_archive(job: jobs.Job, key: str, items: Iterable[jobs.Item] | None = None, *,
                  merged_parts: Sequence[tuple[str, int]] = ()) -> ArchiveResult:
    """Stream the job's outputs and manifests into ``key``. ``items`` defaults to all of the
    job's items (read page by page). ``merged_parts`` (S3 key, part number) are the merged PDF
    of a ``merge_pdf`` batch (:mod:`posterflow.finalize.merge_pdf`), added as ``merged.pdf``
    (``merged-001.pdf`` … when there are parts) and named in ``manifest.json``."""
    started = time.perf_counter()
    bucket = config.bucket()
    names = [merged_member_name(number, len(merged_parts)) for _, number in merged_parts]
    summary = _summary(job) | ({"merged_pdf": names} if merged_parts else {})
    manifest = ManifestWriter(summary)
    counter = {"files": 0}
    now = datetime.now(UTC).replace(tzinfo=None)
    source = items if items is not None else jobs.iter_items(job.job_id, consistent=True)

    def members() -> Iterator[MemberFile]:
        for item, name, fetched in _prefetch(bucket, source):
            if fetched is None:
                manifest.add(ManifestRow.of(item, None))
                continue
            manifest.add(ManifestRow.of(item, name))
            counter["files"] += 1
            yield _member(name, now, fetched)
        for (merged_key, _), merged_name in zip(merged_parts, names, strict=True):
            yield _member(merged_name, now, _fetch_key(bucket, merged_key))
        yield "manifest.csv", now, _FILE_MODE, ZIP_64, manifest.csv_chunks()
        yield "manifest.json", now, _FILE_MODE, ZIP_64, manifest.json_chunks()

    try:
        with MultipartWriter(
            bucket,
            key,
            content_type="application/zip",
            content_disposition=f'attachment; filename="{download_file_name(job)}"',
        ) as out:
            for chunk in stream_zip(members(), chunk_size=1024 * 1024, get_compressobj=_deflate):
                out.write(chunk)
    finally:
        manifest.close()
    return ArchiveResult(
        key=key,
        files=counter["files"],
        manifest_rows=manifest.rows,
        bytes=out.bytes_written,
        seconds=time.perf_counter() - started,
    )


def _deflate() -> Any:
    # Level 6 on text manifests and large outputs: most of level 9's ratio for far less CPU.
    return zlib.compressobj(wbits=-zlib.MAX_WBITS, level=6)


def _summary(job: jobs.Job) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "name": job.name,
        "status": str(job.final_status()),
        "total": job.total,
        "succeeded": job.succeeded,
        "failed": job.failed,
        "skipped": job.skipped,
        "cancelled": job.cancelled,
        "template_id": job.template_id,
        "created_at": job.created_at,
    }


# Whole bytes, or a botocore StreamingBody for an output over WHOLE_FETCH_MAX.
Fetched = Any


def _member(name: str, modified: datetime, fetched: Fetched) -> MemberFile:
    if isinstance(fetched, bytes):
        method = NO_COMPRESSION_64(len(fetched), zlib.crc32(fetched))
        return name, modified, _FILE_MODE, method, (fetched,)
    return name, modified, _FILE_MODE, ZIP_64, fetched.iter_chunks(1024 * 1024)


def merged_member_name(part: int, parts: int) -> str:
    return "merged.pdf" if parts == 1 else f"merged-{part:03d}.pdf"


def _fetch_key(bucket: str, key: str) -> Fetched:
    """A merged PDF: whole if small, else streamed (it may be hundreds of MB)."""
    try:
        resp = aws.client("s3").get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise ArchiveError(f"merged PDF is missing: s3://{bucket}/{key}") from None
        raise
    body = resp["Body"]
    return bytes(body.read()) if int(resp.get("ContentLength", 0)) <= WHOLE_FETCH_MAX else body


def _fetch(bucket: str, item: jobs.Item) -> Fetched:
    assert item.output_key is not None
    try:
        resp = aws.client("s3").get_object(Bucket=bucket, Key=item.output_key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            # The item says succeeded but its file is gone: an archive without it would not
            # match the job's counts, and silently dropping results is not allowed.
            raise ArchiveError(f"output of item {item.item_id} is missing: s3://{bucket}/{item.output_key}") from None
        raise
    body = resp["Body"]
    if int(resp.get("ContentLength", 0)) <= WHOLE_FETCH_MAX:
        return bytes(body.read())
    return body


def _prefetch(bucket: str, items: Iterable[jobs.Item]) -> Iterator[tuple[jobs.Item, str, Fetched | None]]:
    """Items in order with their output fetched (None for items without one), with up to
    READ_AHEAD fetches in flight."""
    window: deque[tuple[jobs.Item, str, cf.Future[Fetched] | None]] = deque()
    with cf.ThreadPoolExecutor(max_workers=FETCH_THREADS, thread_name_prefix="archive-get") as pool:
        try:
            for item in items:
                wanted = item.status == jobs.ItemStatus.SUCCEEDED and item.output_key
                future = pool.submit(_fetch, bucket, item) if wanted else None
                window.append((item, member_name(item), future))
                while len(window) > READ_AHEAD or (window and window[0][2] is None):
                    yield _resolve(window.popleft())
            while window:
                yield _resolve(window.popleft())
        finally:
            for _, _, future in window:
                if future is not None:
                    future.cancel()


def _resolve(entry: tuple[jobs.Item, str, cf.Future[Fetched] | None]) -> tuple[jobs.Item, str, Fetched | None]:
    item, name, future = entry
    return item, name, None if future is None else future.result()
