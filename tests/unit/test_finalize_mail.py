"""Notification email: address checks, subjects and bodies for each outcome, MIME shape."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from posterflow import jobs
from posterflow.finalize import links, mail

NOW = "2025-01-01T00:00:00.000000Z"
LINK = "https://api.example.com/api/jobs/j1/download?token=123.abc"


def job(
    succeeded: int,
    failed: int,
    *,
    name: str | None = "Spring <b>sale</b>",
    error: str | None = None,
    status: jobs.JobStatus = jobs.JobStatus.PROCESSING,
) -> jobs.Job:
    total = succeeded + failed
    return jobs.Job(
        job_id="j1",
        kind="poster",
        status=status,
        name=name,
        total=total,
        processed=total,
        succeeded=succeeded,
        failed=failed,
        token="t",
        error=error,
        created_at=NOW,
        updated_at=NOW,
        last_progress_at=0.0,
        expires_at=0,
    )


@pytest.mark.parametrize("address", ["ops@example.com", "first.last+tag@mail.example.co.uk", " a@b.io "])
def test_good_addresses(address: str) -> None:
    assert mail.check_address(address) == address.strip()


@pytest.mark.parametrize(
    "address",
    [
        "",
        None,
        "not-an-address",
        "a@b",
        "a@@b.com",
        "a b@c.com",
        "a@b.com\r\nBcc: victim@x.com",
        "Name <a@b.com>",
        "a@b.com, c@d.com",
        "x" * 65 + "@b.com",
        "a@-b.com",
    ],
)
def test_bad_addresses(address: str | None) -> None:
    with pytest.raises(mail.EmailRejected, match="invalid notification email address"):
        mail.check_address(address)


def test_completed_with_errors_lists_reasons_and_link() -> None:
    reasons = [
        mail.Reason(1, "row-1", "missing_placeholders: missing placeholders: name"),
        mail.Reason(4, None, "render failed\nwith a second line"),
    ]
    c = mail.compose(
        job(48, 2),
        kind="completion",
        status="completed_with_errors",
        reasons=reasons,
        link=LINK,
        expires="2025-01-08 00:00 UTC",
        files=48,
    )
    assert c.subject == "[posterflow] Spring <b>sale</b> completed with errors: 48 of 50 posters ready"
    assert "48 of 50 posters succeeded, 2 failed" in c.text
    assert "item 1 (row-1): missing_placeholders" in c.text and "item 4: render failed with a second line" in c.text
    assert f"Download: {LINK}" in c.text and "2025-01-08" in c.text
    assert "Spring &lt;b&gt;sale&lt;/b&gt;" in c.html and "<b>sale</b>" not in c.html
    assert f'href="{LINK}"' in c.html


def test_merged_pdf_links_follow_the_download_link() -> None:
    one = mail.compose(job(3, 0), kind="completion", status="completed", reasons=[], link=LINK, expires="2025-01-08",
                       files=3, merged_pdf_links=[f"{LINK}&part=1"])
    assert f"Download: {LINK}\nThe link works until 2025-01-08.\n\nMerged PDF: {LINK}&part=1\n" in one.text
    assert f'<a href="{LINK}&amp;part=1">Merged PDF</a>' in one.html
    two = mail.compose(job(3, 0), kind="completion", status="completed", reasons=[], link=LINK, expires="x",
                       files=3, merged_pdf_links=[f"{LINK}&part=1", f"{LINK}&part=2"])
    assert f"Merged PDF, part 1 of 2: {LINK}&part=1\nMerged PDF, part 2 of 2: {LINK}&part=2" in two.text
    assert "The links work until x." in two.text and ">Merged PDF, part 2 of 2</a>" in two.html
    plain = mail.compose(job(3, 0), kind="completion", status="completed", reasons=[], link=LINK, expires="x", files=3)
    assert "Merged PDF" not in plain.text + plain.html


def test_first_few_reasons_are_marked_as_such() -> None:
    c = mail.compose(
        job(0, 9),
        kind="completion",
        status="completed_with_errors",
        reasons=[mail.Reason(i, None, "bad") for i in range(5)],
        link=LINK,
        expires="x",
        files=0,
    )
    assert "Failure reasons (first few):" in c.text
    assert "no posters were produced" in c.subject and "holds only the manifest" in c.text


def test_completed_and_cancelled_subjects() -> None:
    c = mail.compose(job(3, 0), kind="completion", status="completed", reasons=[], link=LINK, expires="x", files=3)
    assert c.subject == "[posterflow] Spring <b>sale</b> completed: 3 posters ready" and "Failure" not in c.text
    c = mail.compose(
        job(1, 0, status=jobs.JobStatus.CANCELLED),
        kind="completion",
        status="cancelled",
        reasons=[],
        link=LINK,
        expires="x",
        files=1,
    )
    assert "was cancelled" in c.subject


def test_failure_mail_has_reason_and_no_link() -> None:
    c = mail.compose(
        job(1, 0, name=None, error="finalize failed: ArchiveError: output of item 0 is missing"),
        kind="failure",
        status="failed",
        reasons=[],
        link=None,
        expires=None,
        files=0,
    )
    assert c.subject == "[posterflow] job j1 failed"
    assert "ArchiveError: output of item 0 is missing" in c.text and "Download" not in c.text


def test_mime_message_has_text_and_html_parts() -> None:
    c = mail.compose(
        job(1, 0, name="Line\nbreak"),
        kind="completion",
        status="completed",
        reasons=[],
        link=LINK,
        expires="x",
        files=1,
    )
    msg = mail.build_message(c, sender="posterflow@example.com", recipient="ops@example.com", job_id="j1")
    parsed = BytesParser(_class=EmailMessage, policy=policy.default).parsebytes(msg.as_bytes())
    assert parsed["Subject"] == "[posterflow] Line break completed: 1 posters ready"
    assert parsed["X-Posterflow-Job"] == "j1" and parsed["To"] == "ops@example.com"
    assert parsed.get_content_type() == "multipart/alternative"
    text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert text is not None and LINK in text.get_content()
    assert html is not None and "<html" in html.get_content()


def test_download_link_carries_a_verifiable_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from posterflow import tokens

    monkeypatch.setenv("POSTERFLOW_API_URL", "https://api.example.com/prod/")
    url = links.download_url("job/1", now=1000.0)
    assert url.startswith("https://api.example.com/prod/api/jobs/job%2F1/download?token=")
    token = url.split("token=", 1)[1]
    assert tokens.verify_download_token("job/1", token, now=1000.0 + 7 * 86400 - 1)
    with pytest.raises(tokens.TokenExpired):
        tokens.verify_download_token("job/1", token, now=1000.0 + 7 * 86400)
