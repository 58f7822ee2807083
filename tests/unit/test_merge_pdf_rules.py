"""Pure rules of merged PDFs and inline batches: keys, part sizes, member names, unreadable PDFs,
the entity a progress frame names."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader, PdfWriter

from posterflow import jobs
from posterflow.finalize import archive, merge_pdf
from posterflow.progress import events

NOW = "2025-01-01T00:00:00.000000Z"


def _job(succeeded: int) -> jobs.Job:
    return jobs.Job(job_id="j1", kind="poster", status=jobs.JobStatus.PROCESSING, total=succeeded,
                    processed=succeeded, succeeded=succeeded, token="t", created_at=NOW, updated_at=NOW,
                    last_progress_at=0.0, expires_at=0, tenant="acme", name="Spring mailing")


def test_keys_are_the_tenants_and_per_round_and_part() -> None:
    assert merge_pdf.merged_key("acme", "j1", 0, 1) == "archives/acme/j1/merged-001.pdf"
    assert merge_pdf.merged_key("acme", "j1", 2, 12) == "archives/acme/j1/merged-r2-012.pdf"
    assert merge_pdf.download_name(_job(1), 3) == "Spring-mailing-j1-merged-003.pdf"


def test_part_pages_is_the_setting_unless_that_makes_too_many_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTERFLOW_MERGED_PDF_PART_PAGES", "10")
    assert merge_pdf.part_pages(_job(1000)) == 10
    assert merge_pdf.part_pages(_job(10_000)) == 10_000 // merge_pdf.MAX_PARTS
    monkeypatch.delenv("POSTERFLOW_MERGED_PDF_PART_PAGES")
    assert merge_pdf.part_pages(_job(10_000)) == 10_000


def test_archive_member_names() -> None:
    assert archive.merged_member_name(1, 1) == "merged.pdf"
    assert [archive.merged_member_name(p, 2) for p in (1, 2)] == ["merged-001.pdf", "merged-002.pdf"]


def test_an_unreadable_pdf_is_a_merge_error_naming_the_item() -> None:
    item = jobs.Item(job_id="j1", item_id=7, status=jobs.ItemStatus.SUCCEEDED, output_key="outputs/acme/j1/7.pdf",
                     created_at=NOW, updated_at=NOW)
    with pytest.raises(merge_pdf.MergeError, match="item 7") as caught:
        merge_pdf._reader(item, b"%PDF-1.4 this is not a PDF")
    assert caught.value.code == "merge_failed" and caught.value.details["item_id"] == 7


def test_current_entity_is_the_latest_item_to_land() -> None:
    assert events.current_entity([]) is None
    assert events.current_entity([{"entity_id": "a"}, {"entity_id": "b"}, {"entity_id": None}]) == "b"
    frame = events.progress({"job_id": "j1", "processed": 2, "total": 4}, current_entity="b")
    assert frame["event"] == "progress" and frame["current_entity"] == "b"
    assert events.progress({"job_id": "j1"})["current_entity"] is None


class _Buffer:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, chunk: bytes) -> int:
        self.data += chunk
        return len(chunk)

    def tell(self) -> int:
        return len(self.data)


def _pdf(*sizes: tuple[int, int]) -> PdfReader:
    writer = PdfWriter()
    for width, height in sizes:
        writer.add_blank_page(width, height)
    out = io.BytesIO()
    writer.write(out)
    return PdfReader(io.BytesIO(out.getvalue()))


def test_the_appender_writes_a_valid_pdf_with_every_page_in_order() -> None:
    buffer = _Buffer()
    appender = merge_pdf.PdfAppender(buffer)  # type: ignore[arg-type]
    assert appender.append(_pdf((100, 200))) == 1
    assert appender.append(_pdf((300, 400), (500, 600))) == 2
    appender.close("Spring mailing")
    data = bytes(buffer.data)
    reader = PdfReader(io.BytesIO(data), strict=True)
    assert [(int(p.mediabox.width), int(p.mediabox.height)) for p in reader.pages] == [(100, 200), (300, 400),
                                                                                       (500, 600)]
    assert reader.metadata is not None and reader.metadata.title == "Spring mailing"
    # Every cross-reference entry points at its object.
    lines = data[data.rindex(b"\nxref\n") + 1:].split(b"\n")
    count = int(lines[1].split()[1])
    for number in range(1, count):
        offset = int(lines[2 + number][:10])
        assert data[offset:].startswith(b"%d 0 obj" % number), number
