"""One merged print PDF of a job's succeeded items, in input (item) order, for ``merge_pdf`` batches.

The merge is a finalize step (``MergePdf`` in ``infra/statemachines/finalize.asl.json``) that
the state machine repeats until it answers ``done``: each invocation appends the next items'
PDFs to one *part* of at most :func:`posterflow.config.merged_pdf_part_pages` pages (and
:data:`PART_INPUT_BYTES_MAX` bytes of item PDFs, and a time budget well inside the function's
timeout), writes it to ``archives/<tenant>/<job>/merged[-rN]-<part>.pdf`` and records it on the
job. A job whose succeeded items fit one part gets one merged PDF; a larger one gets parts
(``merged_pdf_urls``), so no invocation's time grows with the job.

Inside a part, item PDFs are read one at a time from S3 (a small read-ahead window, as the
archive does), parsed with pypdf, and their pages with everything they reference written out
at once by :class:`PdfAppender`; the reader is then dropped, and the merged bytes go straight
to S3 through a multipart upload (nothing on ``/tmp``). Memory holds the read-ahead window,
two upload parts and one offset per written object, whatever the part's size (figures:
``bench/merged_pdf.py``, README).

Failed, skipped and cancelled items are not in the PDF; the archive's manifest lists them.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import io
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from pypdf import PdfReader
from pypdf.errors import PyPdfError
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NullObject,
    NumberObject,
    PdfObject,
    StreamObject,
    TextStringObject,
)

from posterflow import aws, config, jobs, tenancy
from posterflow.errors import PosterflowError, Reason
from posterflow.finalize import archive
from posterflow.finalize.multipart import MultipartWriter
from posterflow.resources import stack_spec

READ_AHEAD = 8
FETCH_THREADS = 4
# Item PDF bytes one part may hold: the size of one merged file a print shop downloads.
PART_INPUT_BYTES_MAX = 1024 * 1024 * 1024
# One item's PDF may be at most this large (a poster is tens of kB; this is a runaway guard):
# the read-ahead window holds up to READ_AHEAD + FETCH_THREADS of them.
ITEM_PDF_BYTES_MAX = 32 * 1024 * 1024
# Seconds one invocation may spend appending before it closes its part, as a share of the
# finalize function's timeout: writing the part and recording it get the rest.
TIME_SHARE = 0.5
MAX_PARTS = 200


class MergeError(PosterflowError):
    """A succeeded item's PDF is missing or unreadable: the merged PDF cannot be what the job's
    counts say, so finalize fails the job (the class name is what the state machine's Catch sees)."""

    reason = Reason.MERGE_FAILED


@dataclass(frozen=True)
class Part:
    part: int
    key: str
    pages: int
    items: int
    bytes: int
    first_item: int | None
    last_item: int | None
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"part": self.part, "key": self.key, "pages": self.pages, "items": self.items, "bytes": self.bytes,
                "first_item": self.first_item, "last_item": self.last_item, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class PartResult:
    part: Part | None
    next_item: int | None  # the first item of the next part; None when every item is merged
    skipped: tuple[int, ...] = ()  # succeeded items whose output is not a PDF (left out, named in the log)


def merged_key(tenant: str, job_id: str, finalize_round: int, part: int) -> str:
    """Deterministic per job, round and part, so a re-run overwrites the same object; under the
    tenant's ``archives/<tenant>/<job>/`` like the results ZIP."""
    suffix = "" if finalize_round == 0 else f"-r{finalize_round}"
    return tenancy.scoped_key(stack_spec().bucket.archives_prefix, tenant, f"{job_id}/merged{suffix}-{part:03d}.pdf")


def merged_flag(finalize_round: int) -> str:
    """The job's ``extra`` field where the merge step records its parts for this round."""
    return f"merged_pdf_r{finalize_round}"


def merged_record(job: jobs.Job, finalize_round: int | None = None) -> dict[str, Any]:
    """What the merge step recorded for ``finalize_round`` (default: the job's current one):
    ``parts`` (key, pages, items, first and last item), ``pages``, ``done``, ``next_item``."""
    found = job.extra.get(merged_flag(job.finalize_round if finalize_round is None else finalize_round))
    return found if isinstance(found, dict) else {}


def part_pages(job: jobs.Job) -> int:
    """Pages per part: the setting, raised if it would make more than :data:`MAX_PARTS` parts
    (each part is a line on the job record, which DynamoDB caps at 400 KB)."""
    return max(config.merged_pdf_part_pages(), -(-(job.succeeded or 0) // MAX_PARTS))


def download_name(job: jobs.Job, part: int) -> str:
    """``<job name>-<id>-merged-001.pdf``: what a browser saves the merged PDF as."""
    return f"{archive.download_file_name(job).removesuffix('.zip')}-merged-{part:03d}.pdf"


def time_budget_s() -> float:
    return stack_spec().function("finalize").timeout_s * TIME_SHARE


class _Sink:
    """The file pypdf writes to: bytes go to the multipart upload; ``tell`` is the offset pypdf
    records in the cross-reference table."""

    def __init__(self, out: MultipartWriter) -> None:
        self._out, self._pos = out, 0

    def write(self, data: bytes) -> int:
        self._out.write(bytes(data))
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        pass


class PdfAppender:
    """Writes one PDF object by object while item PDFs are appended to it: each item's pages
    and everything they reference (contents, fonts, images) are renumbered and written at once,
    and only the objects' offsets and the page numbers stay in memory. At :meth:`close`, the page
    tree, catalog, info, cross-reference table and trailer follow. The item's reader can then be
    dropped: memory does not grow with the pages (pypdf's ``PdfWriter`` holds every page's
    objects until it writes).

    Pages keep their own and inherited attributes (size, resources, rotation); document-level
    parts of an item (outline, struct tree, forms, named destinations) are not carried over,
    as with pypdf's ``add_page``."""

    CATALOG, PAGES = 1, 2
    _HEADER = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"

    def __init__(self, out: _Sink) -> None:
        self._out = out
        self._offsets: list[int] = [0, 0, 0]  # by object number; 1 and 2 are written at close
        self._kids: list[int] = []
        out.write(self._HEADER)

    @property
    def pages(self) -> int:
        return len(self._kids)

    def _number(self) -> int:
        self._offsets.append(-1)
        return len(self._offsets) - 1

    def _write(self, number: int, obj: PdfObject) -> None:
        self._offsets[number] = self._out.tell()
        self._out.write(b"%d 0 obj\n" % number)
        obj.write_to_stream(self._out)  # type: ignore[arg-type]
        self._out.write(b"\nendobj\n")

    def append(self, reader: PdfReader) -> int:
        """Write every page of ``reader`` (and what they reference); the number of pages."""
        numbers: dict[tuple[int, int], int] = {}
        todo: list[tuple[int, IndirectObject]] = []

        def ref(ind: IndirectObject) -> IndirectObject:
            key = (ind.idnum, ind.generation)
            number = numbers.get(key)
            if number is None:
                number = numbers[key] = self._number()
                todo.append((number, ind))
            return IndirectObject(number, 0, None)

        def copy(obj: Any) -> Any:
            if isinstance(obj, IndirectObject):
                return ref(obj)
            if isinstance(obj, StreamObject):
                stream = obj.__class__()
                stream._data = obj._data  # still encoded: written as read
                for key, value in obj.items():
                    if key != "/Length":  # written from the data; it may be an indirect object
                        stream[NameObject(key)] = copy(value)
                return stream
            if isinstance(obj, DictionaryObject):
                return DictionaryObject({NameObject(k): copy(v) for k, v in obj.items()})
            if isinstance(obj, ArrayObject):
                return ArrayObject(copy(v) for v in obj)
            return obj  # numbers, names, strings, booleans, null

        pages = list(reader.pages)
        own: list[int] = []
        for page in pages:  # numbered first, so links between them resolve to the new pages
            number = self._number()
            if page.indirect_reference is not None:
                numbers[(page.indirect_reference.idnum, page.indirect_reference.generation)] = number
            own.append(number)
        for number, page in zip(own, pages, strict=True):
            body = DictionaryObject({NameObject(k): copy(v) for k, v in page.items() if k != "/Parent"})
            body[NameObject("/Parent")] = IndirectObject(self.PAGES, 0, None)
            self._write(number, body)
            self._kids.append(number)
            while todo:
                other, ind = todo.pop()
                found = ind.get_object()
                self._write(other, NullObject() if found is None else copy(found))
        return len(pages)

    def close(self, title: str | None = None) -> None:
        kids = ArrayObject(IndirectObject(n, 0, None) for n in self._kids)
        self._write(self.PAGES, DictionaryObject({NameObject("/Type"): NameObject("/Pages"),
                                                  NameObject("/Kids"): kids,
                                                  NameObject("/Count"): NumberObject(len(self._kids))}))
        self._write(self.CATALOG, DictionaryObject({NameObject("/Type"): NameObject("/Catalog"),
                                                    NameObject("/Pages"): IndirectObject(self.PAGES, 0, None)}))
        info = self._number()
        meta = {NameObject("/Producer"): TextStringObject("posterflow")}
        if title:
            meta[NameObject("/Title")] = TextStringObject(title)
        self._write(info, DictionaryObject(meta))
        xref = self._out.tell()
        size = len(self._offsets)
        lines = [b"xref\n0 %d\n" % size, b"0000000000 65535 f \n"]
        lines += [b"%010d 00000 n \n" % offset for offset in self._offsets[1:]]
        self._out.write(b"".join(lines))
        self._out.write(b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
                        % (size, self.CATALOG, info, xref))


def succeeded_from(job_id: str, start_item: int) -> Iterator[jobs.Item]:
    """The job's succeeded items from ``start_item`` on, in item (input) order."""
    for item in jobs.iter_items(job_id, status=jobs.ItemStatus.SUCCEEDED, consistent=True):
        if item.item_id >= start_item and item.output_key:
            yield item


def merge_part(
    items: Iterable[jobs.Item],
    key: str,
    *,
    part: int,
    max_pages: int,
    max_bytes: int = PART_INPUT_BYTES_MAX,
    deadline: float | None = None,
    title: str | None = None,
    file_name: str | None = None,
) -> PartResult:
    """Append the PDFs of ``items`` (in order) to one part written to ``key`` until the part
    would pass ``max_pages`` pages or ``max_bytes`` input bytes, or ``deadline``
    (``time.monotonic()``) passes; the first item left over starts the next part. A part always
    takes at least one item, so every call makes progress."""
    started = time.perf_counter()
    bucket = config.bucket()
    disposition = f'attachment; filename="{file_name}"' if file_name else None
    out: MultipartWriter | None = None
    appender: PdfAppender | None = None
    pages = count = size = 0
    first: int | None = None
    last: int | None = None
    next_item: int | None = None
    skipped: list[int] = []
    try:
        for item, data in _prefetch(bucket, items):
            if not _is_pdf(item, data):
                skipped.append(item.item_id)
                continue
            reader = _reader(item, data)
            n = len(reader.pages)
            full = pages + n > max_pages or size + len(data) > max_bytes
            late = deadline is not None and time.monotonic() > deadline
            if count and (full or late):
                next_item = item.item_id
                break
            if appender is None:  # the upload starts with the part's first item
                out = MultipartWriter(bucket, key, content_type="application/pdf", content_disposition=disposition)
                appender = PdfAppender(_Sink(out))
            try:
                appender.append(reader)
            except (PyPdfError, ValueError, KeyError, TypeError) as exc:
                raise MergeError(f"the PDF of item {item.item_id} cannot be read: {exc}",
                                 details={"item_id": item.item_id, "key": item.output_key}) from None
            pages, count, size = pages + n, count + 1, size + len(data)
            first = item.item_id if first is None else first
            last = item.item_id
            del reader, data
        if appender is None or out is None:
            return PartResult(part=None, next_item=None, skipped=tuple(skipped))
        appender.close(title)
        out.complete()
    except BaseException:
        if out is not None:
            with contextlib.suppress(Exception):
                out.abort()
        raise
    written = out.bytes_written
    return PartResult(
        part=Part(part=part, key=key, pages=pages, items=count, bytes=written, first_item=first, last_item=last,
                  seconds=time.perf_counter() - started),
        next_item=next_item,
        skipped=tuple(skipped),
    )


def _is_pdf(item: jobs.Item, data: bytes) -> bool:
    return bool(item.output_key and item.output_key.lower().endswith(".pdf")) and data[:5] == b"%PDF-"


def _reader(item: jobs.Item, data: bytes) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(data))
        _ = len(reader.pages)
        return reader
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise MergeError(f"the PDF of item {item.item_id} cannot be read: {exc}",
                         details={"item_id": item.item_id, "key": item.output_key}) from None


def _fetch(bucket: str, item: jobs.Item) -> bytes:
    assert item.output_key is not None
    try:
        resp = aws.client("s3").get_object(Bucket=bucket, Key=item.output_key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise MergeError(f"output of item {item.item_id} is missing: s3://{bucket}/{item.output_key}",
                             details={"item_id": item.item_id, "key": item.output_key}) from None
        raise
    if int(resp.get("ContentLength", 0)) > ITEM_PDF_BYTES_MAX:
        resp["Body"].close()
        raise MergeError(f"the PDF of item {item.item_id} is over {ITEM_PDF_BYTES_MAX // (1024 * 1024)} MB",
                         details={"item_id": item.item_id, "key": item.output_key})
    return bytes(resp["Body"].read())


def _prefetch(bucket: str, items: Iterable[jobs.Item]) -> Iterator[tuple[jobs.Item, bytes]]:
    """Items in order with their PDF bytes, up to READ_AHEAD GETs in flight; stopping early
    cancels the rest."""
    window: deque[tuple[jobs.Item, cf.Future[bytes]]] = deque()
    pool = cf.ThreadPoolExecutor(max_workers=FETCH_THREADS, thread_name_prefix="merge-get")
    try:
        for item in items:
            window.append((item, pool.submit(_fetch, bucket, item)))
            if len(window) > READ_AHEAD:
                head, future = window.popleft()
                yield head, future.result()
        while window:
            head, future = window.popleft()
            yield head, future.result()
    finally:
        for _, future in window:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
