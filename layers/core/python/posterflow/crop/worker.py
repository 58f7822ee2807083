"""The crop worker: one photo per message → read, face-detect, crop, store, record.

A message names its photo in one of three ways: an entry of a ZIP in S3 (the splitter's
messages; range-read, a batch's neighbouring entries in one GET, and inflated alone), an S3
key of the project bucket, or an allow-listed URL (both from ``POST /api/batch/add-images``).
A photo that cannot be read or used fails its item with the reason; AWS errors are left for
SQS to redeliver (batch item failures).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from aws_lambda_powertools import Logger
from pydantic import BaseModel, model_validator

from posterflow import aws, config, jobs, observability, tenancy
from posterflow.crop import CropOptions, PhotoError, crop_photo
from posterflow.crop.errors import SourceError as SourceError
from posterflow.errors import Reason
from posterflow.formats import zipindex
from posterflow.jobs import sqs_batch
from posterflow.net import fetch, sources
from posterflow.net.policy import AllowRule, NetPolicy
from posterflow.resources import stack_spec

logger = Logger(child=True)

ENV_PRIVATE_ALLOWLIST = config.PRIVATE_URL_ALLOWLIST.name
"""Comma-separated URL prefixes that may be fetched even though they resolve to loopback or
private addresses (the local cloud, tests). Never set in AWS: photo URLs otherwise obey the
render allow-list, which refuses every non-public address. Metadata addresses stay refused."""


# The item reasons the crop API has always recorded.
_SOURCE_REASONS: dict[Reason, Reason] = {
    Reason.SOURCE_NOT_FOUND: Reason.NOT_FOUND, Reason.SOURCE_CHANGED: Reason.OBJECT_CHANGED}


class CropMessage(BaseModel):
    job_id: str
    item_id: int
    bucket: str | None = None
    key: str | None = None
    etag: str | None = None
    entry: zipindex.ZipEntry | None = None
    """Set: ``key`` is a ZIP and the photo is this entry. Unset: ``key`` is the photo itself."""
    url: str | None = None
    options: CropOptions = CropOptions()

    @model_validator(mode="after")
    def _one_source(self) -> CropMessage:
        if (self.key is None) == (self.url is None):
            raise ValueError("a crop message names exactly one of key and url")
        if self.entry is not None and (self.key is None or self.bucket is None):
            raise ValueError("a ZIP entry needs the bucket and key of its archive")
        return self

    @property
    def source_name(self) -> str:
        """The name output keys are made from (its last path part, made safe)."""
        if self.entry is not None:
            return self.entry.name
        if self.key is not None:
            return self.key
        return unquote(urlsplit(self.url or "").path) or "photo"


def output_key(tenant: str, job_id: str, item_id: int, entry_name: str, extension: str, rank: int = 0) -> str:
    stem = zipindex.safe_output_name(entry_name, item_id)
    suffix = f"-face{rank}" if rank else ""
    return tenancy.scoped_key(stack_spec().bucket.outputs_prefix, tenant,
                              f"{job_id}/{stem}{suffix}.{extension.lstrip('.')}")


def url_policy() -> NetPolicy:
    """The render allow-list plus :data:`ENV_PRIVATE_ALLOWLIST`; read per call, because the
    local cloud runs every function in one process and tests set it."""
    private = [AllowRule.parse(p, allow_private=True) for p in config.private_url_allowlist()]
    return NetPolicy.from_env(extra=private)


class BatchArchives:
    """The ZIP readers of one batch of messages, one per archive. The first photo read from an
    archive fetches every entry the batch wants from it in as few ranged GETs as the layout
    allows (:class:`zipindex.PrefetchingReader`); the rest are then read from memory."""

    def __init__(self, messages: list[CropMessage]) -> None:
        self._wanted: dict[tuple[str, str, str | None], list[zipindex.ZipEntry]] = {}
        for msg in messages:
            if msg.key is not None and msg.entry is not None:
                self._wanted.setdefault(self._archive(msg), []).append(msg.entry)
        self._readers: dict[tuple[str, str, str | None], zipindex.PrefetchingReader] = {}

    @staticmethod
    def _archive(msg: CropMessage) -> tuple[str, str, str | None]:
        return msg.bucket or config.bucket(), msg.key or "", msg.etag

    def reader(self, msg: CropMessage) -> zipindex.RangeReader:
        archive = self._archive(msg)
        found = self._readers.get(archive)
        if found is None:
            bucket, key, etag = archive
            found = zipindex.PrefetchingReader(zipindex.S3RangeReader(bucket, key, etag=etag))
            found.prefetch(self._wanted.get(archive, []))
            self._readers[archive] = found
        return found


def read_photo(msg: CropMessage, archives: BatchArchives | None = None) -> bytes:
    """The photo's bytes. Raises SourceError / PhotoError / zipindex.BadEntry for the item."""
    if msg.key is not None and msg.entry is not None:
        archives = archives or BatchArchives([msg])
        return zipindex.read_entry(archives.reader(msg), msg.entry)
    if msg.key is not None:
        try:
            return sources.read_object(msg.key, what="photo", etag=msg.etag, max_bytes=msg.options.max_bytes,
                                       bucket=msg.bucket)
        except sources.SourceTooLarge as exc:
            raise PhotoError(Reason.TOO_LARGE, exc.message) from None
        except sources.SourceError as exc:
            raise SourceError(_SOURCE_REASONS.get(exc.reason, Reason.SOURCE_FAILED), exc.message) from None
    try:
        return fetch.fetch_url(msg.url or "", url_policy(), what="photo")
    except fetch.FetchError as exc:
        raise SourceError(exc.reason, exc.message) from None  # url_blocked or url_failed


@observability.tracer.capture_method(capture_response=False)
def crop_one(msg: CropMessage, tenant: str, archives: BatchArchives | None = None) -> dict[str, Any]:
    """Crop one photo and store it under the tenant's outputs; returns the item fields.
    Raises PhotoError/BadEntry/SourceError."""
    results = crop_photo(read_photo(msg, archives), msg.options)
    s3 = aws.client("s3")
    keys = []
    for rank, result in enumerate(results):
        key = output_key(tenant, msg.job_id, msg.item_id, msg.source_name, result.extension, rank)
        s3.put_object(Bucket=config.bucket(), Key=key, Body=result.output, ContentType=result.content_type)
        keys.append(key)
    best = results[0]
    return {
        "output_key": keys[0],
        "timings": {"total_ms": best.timings.total_ms, "decode_ms": best.timings.decode_ms,
                    "detect_ms": best.timings.detect_ms},
        "extra": {"face_detected": best.face_detected, "score": best.score, "faces_found": best.faces_found,
                  "box": best.box.model_dump() if best.box else None, "outputs": keys,
                  "source": [best.source_width, best.source_height]},
    }


def handle_sqs(event: dict[str, Any]) -> dict[str, Any]:
    return sqs_batch.whole_batch(event, CropMessage, crop_batch, what="crop")


def crop_batch(batch: list[sqs_batch.Received[CropMessage]]) -> list[str]:
    """Crop a batch's photos (its ZIP entries read together) and record their outcomes; the ids
    of the messages to redeliver."""
    redeliver: list[str] = []
    # One look-up per job per batch, as the render worker does: a cancel that lands mid-batch
    # has already finished the pending items, so the rest of the batch counts as already done.
    owners: dict[str, jobs.Job | None] = {}
    # Outcomes are recorded together at the end of the batch (one counter write per job); an
    # instance that dies before that leaves every message of the batch for redelivery, and the
    # crops it already wrote are written again under the same keys.
    outcomes: list[tuple[str, jobs.ItemOutcome, str]] = []
    archives = BatchArchives([received.message for received in batch])
    for received in batch:
        msg = received.message
        try:
            if msg.job_id not in owners:
                owners[msg.job_id] = jobs.find_job(msg.job_id)
            job = owners[msg.job_id]
            if job is None:
                # Expired or never was: no item to record, and redelivery cannot change that.
                logger.warning("dropping a crop message of an unknown job", extra={"job_id": msg.job_id})
                continue
            if job.status == jobs.JobStatus.CANCELLED:
                outcome = jobs.ItemOutcome(item_id=msg.item_id, status=jobs.ItemStatus.CANCELLED,
                                           error="job cancelled", error_code=Reason.CANCELLED)
            else:
                try:
                    outcome = jobs.ItemOutcome(item_id=msg.item_id, status=jobs.ItemStatus.SUCCEEDED,
                                               **crop_one(msg, job.tenant, archives))
                except (PhotoError, zipindex.BadEntry, SourceError) as exc:
                    outcome = jobs.ItemOutcome.failure(msg.item_id, exc)
        except Exception:
            logger.exception("crop failed; leaving the message for redelivery",
                             extra={"job_id": msg.job_id, "item_id": msg.item_id})
            redeliver.append(received.message_id)
            continue
        outcomes.append((msg.job_id, outcome, received.message_id))
    redeliver.extend(jobs.finish_batch(outcomes, source="crop"))
    left = set(redeliver)
    sent_at_ms = {received.message_id: received.sent_at_ms for received in batch}
    for _, outcome, message_id in outcomes:
        if message_id not in left and outcome.status != jobs.ItemStatus.CANCELLED:
            observe(outcome)
            observability.queue_to_done(sent_at_ms.get(message_id))
    return redeliver


def observe(outcome: jobs.ItemOutcome) -> None:
    """The photo's metrics: crop time and faces found of a cropped photo, or a failure."""
    if outcome.status != jobs.ItemStatus.SUCCEEDED:
        observability.crop(succeeded=False)
        return
    faces = (outcome.extra or {}).get("faces_found")
    observability.crop(succeeded=True, crop_ms=(outcome.timings or {}).get("total_ms"),
                       faces_found=int(faces) if isinstance(faces, int | float) else None)
