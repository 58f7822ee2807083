"""The crop worker: one ZIP entry per message → range-read, face-detect, crop, store, record.

A photo that cannot be used fails its item with the reason; AWS errors are left for SQS to
redeliver (batch item failures).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ValidationError

from posterflow import aws, config, jobs, zipindex
from posterflow.crop import CropOptions, PhotoError, crop_photo
from posterflow.resources import stack_spec

logger = Logger(child=True)


class CropMessage(BaseModel):
    job_id: str
    item_id: int
    bucket: str
    key: str
    etag: str | None = None
    entry: zipindex.ZipEntry
    options: CropOptions = CropOptions()


def output_key(job_id: str, item_id: int, entry_name: str, extension: str, rank: int = 0) -> str:
    stem = zipindex.safe_output_name(entry_name, item_id)
    suffix = f"-face{rank}" if rank else ""
    return f"{stack_spec().bucket.outputs_prefix}{job_id}/{stem}{suffix}.{extension.lstrip('.')}"


def crop_one(msg: CropMessage) -> dict[str, Any]:
    """Crop one entry and store it; returns the item fields. Raises PhotoError/BadEntry."""
    reader = zipindex.S3RangeReader(msg.bucket, msg.key, etag=msg.etag)
    data = zipindex.read_entry(reader, msg.entry)
    results = crop_photo(data, msg.options)
    s3 = aws.client("s3")
    keys = []
    for rank, result in enumerate(results):
        key = output_key(msg.job_id, msg.item_id, msg.entry.name, result.extension, rank)
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
    failures: list[dict[str, str]] = []
    for record in event.get("Records", []):
        try:
            msg = CropMessage.model_validate_json(record["body"])
        except ValidationError as exc:
            logger.error("dropping malformed crop message", extra={"error": str(exc), "body": record["body"][:500]})
            continue
        try:
            if jobs.is_cancelled(msg.job_id):
                jobs.finish_item(msg.job_id, msg.item_id, status="cancelled", error="job cancelled")
                continue
            try:
                fields = crop_one(msg)
            except (PhotoError, zipindex.BadEntry) as exc:
                jobs.finish_item(msg.job_id, msg.item_id, status="failed", error=f"{exc.reason}: {exc.message}")
                continue
            jobs.finish_item(msg.job_id, msg.item_id, status="succeeded", **fields)
        except Exception:
            logger.exception("crop failed; leaving the message for redelivery",
                             extra={"job_id": msg.job_id, "item_id": msg.item_id})
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
