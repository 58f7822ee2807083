"""The notification email: a MIME message (text + HTML) sent with SES ``SendRawEmail``.

Raw rather than ``SendEmail`` so both parts and our own headers go out exactly as built (the
local cloud writes the same bytes to an ``.eml`` file).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal

from botocore.exceptions import ClientError

from posterflow import aws, config, jobs

MailKind = Literal["completion", "failure"]
MAX_REASONS = 5
# Deliberately plain: one address, no display name, no list. Anything SES would reject (or
# that could smuggle extra headers) is refused here with a reason for the job log.
_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$"
)


class EmailRejected(Exception):
    """The address is not deliverable (bad syntax, or SES refused it): recorded, not retried."""


@dataclass(frozen=True)
class Reason:
    item_id: int
    entity_id: str | None
    error: str


@dataclass(frozen=True)
class MailContent:
    subject: str
    text: str
    html: str


def check_address(address: str | None) -> str:
    value = (address or "").strip()
    if not value or len(value) > 254 or not _ADDRESS.match(value):
        raise EmailRejected(f"invalid notification email address {value!r}")
    return value


def first_failures(job_id: str, limit: int = MAX_REASONS) -> list[Reason]:
    out: list[Reason] = []
    # The status filter applies after DynamoDB reads a page, so large pages find sparse
    # failures in a 10,000-item job with a few queries rather than a hundred.
    for item in jobs.iter_items(job_id, status=jobs.ItemStatus.FAILED, page_size=1000):
        out.append(Reason(item.item_id, item.entity_id, item.error or "failed without a reason"))
        if len(out) >= limit:
            break
    return out


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def compose(
    job: jobs.Job,
    *,
    kind: MailKind,
    status: str,
    reasons: list[Reason],
    link: str | None,
    expires: str | None,
    files: int,
    merged_pdf_links: list[str] | None = None,
) -> MailContent:
    """Subject and bodies; ``files`` is how many outputs the archive holds; ``merged_pdf_links``
    the parts of a ``merge_pdf`` job's merged PDF (signed download links, valid until ``expires``)."""
    merged = list(merged_pdf_links or [])
    name = _one_line(job.name or f"job {job.job_id}", 80)
    noun = "photos" if job.kind == "crop" else "posters"
    total = job.total or 0
    counts = f"{job.succeeded} of {total} {noun} succeeded, {job.failed} failed"
    lines: list[str] = []
    if kind == "failure":
        subject = f"[posterflow] {name} failed"
        lines.append(f"The job {name} failed and produced no results archive.")
        lines.append(f"Reason: {_one_line(job.error or 'unknown error')}")
        lines.append(counts + ".")
    else:
        if status == "cancelled":
            subject = f"[posterflow] {name} was cancelled: {job.succeeded} of {total} {noun} ready"
        elif job.succeeded == 0:
            subject = f"[posterflow] {name} finished: no {noun} were produced"
        elif job.failed:
            subject = f"[posterflow] {name} completed with errors: {job.succeeded} of {total} {noun} ready"
        else:
            subject = f"[posterflow] {name} completed: {job.succeeded} {noun} ready"
        lines.append(f"The job {name} is {status.replace('_', ' ')}: {counts}.")
        if files == 0:
            lines.append(
                f"None of the {noun} succeeded, so the download holds only the manifest "
                "(manifest.csv / manifest.json) listing each item and its error."
            )
        else:
            lines.append(f"The download is one ZIP with {files} {noun} and a manifest (manifest.csv / manifest.json).")
    reason_lines = [
        f"item {r.item_id}" + (f" ({_one_line(r.entity_id, 60)})" if r.entity_id else "") + f": {_one_line(r.error)}"
        for r in reasons
    ]
    text = "\n\n".join(lines)
    if reason_lines:
        more = " (first few)" if job.failed > len(reasons) else ""
        text += f"\n\nFailure reasons{more}:\n" + "\n".join(f"  - {r}" for r in reason_lines)
    if link:
        text += f"\n\nDownload: {link}\nThe link works until {expires}."
    merged_labels = [_merged_label(i, len(merged)) for i in range(1, len(merged) + 1)]
    if merged:
        text += "\n\n" + "\n".join(f"{label}: {url}" for label, url in zip(merged_labels, merged, strict=True))
        text += f"\n{'The link works' if len(merged) == 1 else 'The links work'} until {expires}."
    text += f"\n\nJob id: {job.job_id}\n"

    h = [f"<p>{html.escape(line)}</p>" for line in lines]
    if reason_lines:
        h.append(
            "<p>Failure reasons"
            + (" (first few)" if job.failed > len(reasons) else "")
            + ":</p><ul>"
            + "".join(f"<li>{html.escape(r)}</li>" for r in reason_lines)
            + "</ul>"
        )
    if link:
        h.append(
            f'<p><a href="{html.escape(link, quote=True)}">Download the results</a> '
            f"(the link works until {html.escape(expires or '')}).</p>"
        )
    if merged:
        anchors = ", ".join(f'<a href="{html.escape(url, quote=True)}">{html.escape(label)}</a>'
                            for label, url in zip(merged_labels, merged, strict=True))
        h.append(f"<p>{anchors} (until {html.escape(expires or '')}).</p>")
    h.append(f'<p style="color:#666;font-size:12px">Job id: {html.escape(job.job_id)}</p>')
    body_html = (
        '<!DOCTYPE html><html><body style="font-family:sans-serif">'
        f"<h2>{html.escape(subject.removeprefix('[posterflow] '))}</h2>{''.join(h)}</body></html>"
    )
    return MailContent(subject=subject, text=text, html=body_html)


def _merged_label(part: int, parts: int) -> str:
    return "Merged PDF" if parts == 1 else f"Merged PDF, part {part} of {parts}"


def build_message(content: MailContent, *, sender: str, recipient: str, job_id: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = content.subject
    msg["From"] = sender
    msg["To"] = recipient
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1])
    msg["X-Posterflow-Job"] = job_id
    msg.set_content(content.text)
    msg.add_alternative(content.html, subtype="html")
    return msg


def send(msg: EmailMessage, *, recipient: str) -> str:
    """Send through SES; returns the SES message id. SES refusing the address raises
    :class:`EmailRejected`; other errors (throttling, outages) propagate for a retry."""
    try:
        resp = aws.client("ses").send_raw_email(
            Source=config.ses_sender(), Destinations=[recipient], RawMessage={"Data": msg.as_bytes()}
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("MessageRejected", "InvalidParameterValue"):
            raise EmailRejected(f"SES refused the message: {code}: {exc.response['Error'].get('Message', '')}") from exc
        raise
    return str(resp["MessageId"])
