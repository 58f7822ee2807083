"""Pure rules of merged PDFs and inline batches: keys, part sizes, member names, unreadable PDFs,
the entity a progress frame names."""

from __future__ import annotations

import pytest

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
    assert merge_pdf.part_pages(_job(10_000)) == 2000


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
