"""The results archive against an in-memory S3: ZIP contents, manifests, multipart parts, failures."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from posterflow import aws, jobs
from posterflow.finalize import archive
from posterflow.finalize.multipart import MultipartWriter

NOW = "2025-01-01T00:00:00.000000Z"


class FakeBody:
    def __init__(self, data: bytes) -> None:
        self._io = io.BytesIO(data)

    def read(self) -> bytes:
        return self._io.read()

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        while chunk := self._io.read(size):
            yield chunk


class FakeS3:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.parts: dict[int, bytes] = {}
        self.uploaded: bytes | None = None
        self.aborted = False
        self.upload_args: dict[str, Any] = {}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "gone"}}, "GetObject")
        return {"Body": FakeBody(self.objects[Key]), "ContentLength": len(self.objects[Key])}

    def create_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        self.upload_args = kwargs
        return {"UploadId": "u1"}

    def upload_part(self, *, PartNumber: int, Body: bytes, **_: Any) -> dict[str, Any]:
        self.parts[PartNumber] = Body
        return {"ETag": f'"{PartNumber}"'}

    def complete_multipart_upload(self, *, MultipartUpload: dict[str, Any], **_: Any) -> None:
        numbers = [p["PartNumber"] for p in MultipartUpload["Parts"]]
        assert numbers == sorted(self.parts)
        self.uploaded = b"".join(self.parts[n] for n in numbers)

    def abort_multipart_upload(self, **_: Any) -> None:
        self.aborted = True


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> FakeS3:
    fake = FakeS3({})
    monkeypatch.setattr(aws, "client", lambda service: fake)
    monkeypatch.setenv("POSTERFLOW_BUCKET", "b")
    return fake


def job(total: int, succeeded: int) -> jobs.Job:
    return jobs.Job(
        job_id="j1",
        kind="poster",
        status=jobs.JobStatus.PROCESSING,
        name="Spring",
        total=total,
        processed=total,
        succeeded=succeeded,
        failed=total - succeeded,
        token="t",
        created_at=NOW,
        updated_at=NOW,
        last_progress_at=0.0,
        expires_at=0,
    )


def item(i: int, *, ok: bool = True, entity: str | None = None, error: str | None = None) -> jobs.Item:
    return jobs.Item(
        job_id="j1",
        item_id=i,
        entity_id=entity or f"e{i}",
        status=jobs.ItemStatus.SUCCEEDED if ok else jobs.ItemStatus.FAILED,
        output_key=f"outputs/j1/{i:06d}.png" if ok else None,
        error=error,
        error_code=None if ok else "missing_placeholders",
        timings={"total_ms": 12.5} if ok else {},
        attempts=1,
        created_at=NOW,
        updated_at=NOW,
    )


def test_outputs_and_manifests_in_one_zip(s3: FakeS3, monkeypatch: pytest.MonkeyPatch) -> None:
    # Item 2 is over the whole-fetch limit, so it takes the streamed (deflated) path.
    monkeypatch.setattr(archive, "WHOLE_FETCH_MAX", 1000)
    s3.objects = {f"outputs/j1/{i:06d}.png": bytes([i]) * (300 if i != 2 else 5000) for i in range(4)}
    items = [
        item(0),
        item(1, entity="../../etc/passwd"),
        item(2),
        item(3),
        item(4, ok=False, entity="=HYPERLINK(evil)", error="@SUM(1): missing placeholders: name"),
    ]
    result = archive.build_archive(job(5, 4), "archives/j1/results.zip", items)

    assert s3.uploaded is not None and result.bytes == len(s3.uploaded)
    assert (result.files, result.manifest_rows, result.manifest_only) == (4, 5, False)
    assert s3.upload_args["ContentType"] == "application/zip"
    assert "Spring-j1.zip" in s3.upload_args["ContentDisposition"]
    zf = zipfile.ZipFile(io.BytesIO(s3.uploaded))
    assert zf.testzip() is None
    assert zf.namelist() == [
        "000000_e0.png",
        "000001_etc_passwd.png",
        "000002_e2.png",
        "000003_e3.png",
        "manifest.csv",
        "manifest.json",
    ]
    assert zf.read("000002_e2.png") == bytes([2]) * 5000
    assert zf.getinfo("000000_e0.png").compress_type == zipfile.ZIP_STORED

    rows = list(csv.DictReader(io.StringIO(zf.read("manifest.csv").decode())))
    assert [r["status"] for r in rows] == ["succeeded"] * 4 + ["failed"]
    assert rows[4]["entity_id"] == "'=HYPERLINK(evil)" and rows[4]["error"].startswith("'@SUM")
    assert rows[4]["file_name"] == "" and rows[0]["generation_time_ms"] == "12"
    assert rows[4]["error_code"] == "missing_placeholders" and rows[0]["error_code"] == ""
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["job_id"] == "j1" and manifest["status"] == "completed_with_errors"
    assert manifest["items"][4]["entity_id"] == "=HYPERLINK(evil)"  # JSON is data, not a formula
    assert manifest["items"][0]["timings"] == {"total_ms": 12.5}
    assert manifest["items"][4]["error_code"] == "missing_placeholders"


def test_zero_successes_make_a_manifest_only_archive(s3: FakeS3) -> None:
    result = archive.build_archive(job(2, 0), "k.zip", [item(0, ok=False, error="bad"), item(1, ok=False)])
    assert result.manifest_only and result.manifest_rows == 2
    assert s3.uploaded is not None
    zf = zipfile.ZipFile(io.BytesIO(s3.uploaded))
    assert zf.namelist() == ["manifest.csv", "manifest.json"]
    assert len(json.loads(zf.read("manifest.json"))["items"]) == 2


def test_missing_output_fails_the_archive_and_aborts_the_upload(s3: FakeS3) -> None:
    s3.objects = {"outputs/j1/000000.png": b"x"}
    with pytest.raises(archive.ArchiveError, match="output of item 1 is missing"):
        archive.build_archive(job(2, 2), "k.zip", [item(0), item(1)])
    assert s3.aborted and s3.uploaded is None


def test_multipart_writer_splits_into_parts(s3: FakeS3) -> None:
    with MultipartWriter("b", "k", content_type="application/zip", part_size=5) as out:
        for chunk in (b"abc", b"defgh", b"ij", b"klmnopqrstu"):
            out.write(chunk)
    assert s3.uploaded == b"abcdefghijklmnopqrstu"
    # A part is cut once the buffer reaches part_size (S3's minimum); only the last is short.
    assert s3.parts == {1: b"abcdefgh", 2: b"ijklmnopqrstu"}


def test_empty_object_still_completes_with_one_part(s3: FakeS3) -> None:
    with MultipartWriter("b", "k", content_type="text/plain"):
        pass
    assert s3.uploaded == b"" and list(s3.parts) == [1]


def test_archive_key_is_fixed_per_job_and_round() -> None:
    assert archive.archive_key("t1", "j1", 0) == archive.archive_key("t1", "j1", 0) == "archives/t1/j1/results.zip"
    assert archive.archive_key("t1", "j1", 2) == "archives/t1/j1/results-r2.zip"
