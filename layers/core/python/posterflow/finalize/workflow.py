"""The tasks of the finalize state machine (``infra/statemachines/finalize.asl.json``).

Each task is small and safe to repeat: the archive key is fixed per job and round, emails are
claimed on the job before sending, a delivered webhook is marked and not sent again, and
completing or failing the job are conditional status changes. Every task first checks that the
job is still on the round the execution was started for: a retry of failed items starts a new
round (and a new execution), and a stale execution must not touch it.

Every task returns the same ``Outcome`` shape where the state machine branches on it.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

from posterflow import config, jobs, tenancy
from posterflow.finalize import archive, links, mail, merge_pdf, state, webhook

logger = Logger(child=True)

Action = Literal["merge_pdf", "archive", "email", "webhook", "notify_failed", "complete", "fail"]


class EmailTransientError(Exception):
    """SES or DynamoDB hiccup while emailing; the state machine retries on this name."""


class FinalizeEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")
    action: Action
    job_id: str
    finalize_round: int = 0
    status: str | None = None
    archive_key: str | None = None
    channel: Literal["email", "webhook"] | None = None
    error: dict[str, Any] | None = None
    attempt: int = 0


def outcome(
    job: jobs.Job,
    *,
    proceed: bool,
    status: str,
    archive_key: str | None = None,
    files: int = 0,
    reason: str | None = None,
) -> dict[str, Any]:
    return {
        "proceed": proceed,
        "status": status,
        "archive_key": archive_key,
        "files": files,
        "notify": proceed and bool(job.notify_email),
        "webhook": proceed and bool(job.webhook_url),
        "reason": reason,
    }


def handle(event: dict[str, Any]) -> dict[str, Any]:
    ev = FinalizeEvent.model_validate(event)
    handlers = {
        "merge_pdf": _merge_pdf,
        "archive": _archive,
        "email": _email,
        "webhook": _webhook,
        "notify_failed": _notify_failed,
        "complete": _complete,
        "fail": _fail,
    }
    return handlers[ev.action](ev)


def _stale(job: jobs.Job, ev: FinalizeEvent) -> bool:
    if job.finalize_round == ev.finalize_round:
        return False
    jobs.add_log(
        job.job_id,
        "INFO",
        f"finalize round {ev.finalize_round} superseded by round {job.finalize_round}; this execution stops",
    )
    return True


def _archive(ev: FinalizeEvent) -> dict[str, Any]:
    job = jobs.get_job(ev.job_id)
    if _stale(job, ev):
        return outcome(job, proceed=False, status=str(job.status), reason="stale round")
    if job.status == jobs.JobStatus.FAILED:
        return outcome(job, proceed=False, status=str(job.status), reason="job already failed")
    if not job.is_complete:
        jobs.add_log(
            job.job_id, "WARNING", f"finalize started with {job.processed} of {job.total} items processed; nothing done"
        )
        return outcome(job, proceed=False, status=str(job.status), reason="items outstanding")
    status = str(job.status if job.is_final else job.final_status())
    key = archive.archive_key(job.tenant, job.job_id, ev.finalize_round)
    flag = f"archive_r{ev.finalize_round}"
    recorded = job.extra.get(flag)
    if isinstance(recorded, dict) and archive.existing_archive(job, key):
        logger.info("archive already built", extra={"key": key})
        return outcome(job, proceed=True, status=status, archive_key=key, files=int(recorded.get("files", 0)))
    merged = merge_pdf.merged_record(job, ev.finalize_round)
    parts = [(str(p["key"]), int(p["part"])) for p in merged.get("parts", [])] if merged.get("done") else []
    result = archive.build_archive(job, key, merged_parts=parts)
    state.record_archive(job.job_id, key, ev.finalize_round)
    state.put(job.job_id, flag, {"files": result.files, "bytes": result.bytes, "seconds": round(result.seconds, 3)})
    what = "manifest only (no item succeeded)" if result.manifest_only else f"{result.files} file(s)"
    jobs.add_log(
        job.job_id,
        "INFO",
        f"results archive built: {what}, {result.bytes} bytes",
        {"archive_key": key, "seconds": round(result.seconds, 3), "manifest_rows": result.manifest_rows},
    )
    return outcome(job, proceed=True, status=status, archive_key=key, files=result.files)


def _merge_pdf(ev: FinalizeEvent) -> dict[str, Any]:
    """One part of the merged PDF of a ``merge_pdf`` batch (:mod:`posterflow.finalize.merge_pdf`);
    the state machine calls this again while it answers ``done: false``. Every other job is
    done at once."""
    job = jobs.get_job(ev.job_id)
    if not job.extra.get("merge_pdf") or _stale(job, ev):
        return {"done": True, "parts": 0}
    if job.status in (jobs.JobStatus.FAILED, jobs.JobStatus.CANCELLED) or not job.is_complete:
        return {"done": True, "parts": 0, "reason": f"job {job.status}, {job.processed} of {job.total} processed"}
    flag = merge_pdf.merged_flag(ev.finalize_round)
    record = merge_pdf.merged_record(job, ev.finalize_round)
    parts: list[dict[str, Any]] = list(record.get("parts", []))
    if record.get("done"):
        return {"done": True, "parts": len(parts)}
    start = int(record.get("next_item", 0))
    number = len(parts) + 1
    key = merge_pdf.merged_key(job.tenant, job.job_id, ev.finalize_round, number)
    result = merge_pdf.merge_part(
        merge_pdf.succeeded_from(job.job_id, start), key, part=number, max_pages=merge_pdf.part_pages(job),
        deadline=time.monotonic() + merge_pdf.time_budget_s(), title=job.name or f"posterflow job {job.job_id}",
        file_name=merge_pdf.download_name(job, number),
    )
    if result.part is not None:
        parts.append(result.part.as_dict())
    done = result.next_item is None
    skipped = [*record.get("skipped", []), *result.skipped]
    state.put(job.job_id, flag, {"parts": parts, "done": done, "next_item": result.next_item,
                                 "pages": sum(int(p["pages"]) for p in parts), "skipped": skipped[:100]})
    if result.skipped:
        jobs.add_log(job.job_id, "WARNING", f"{len(result.skipped)} succeeded item(s) have no PDF output; "
                     "they are not in the merged PDF", {"items": list(result.skipped)[:100]})
    if result.part is not None:
        p = result.part
        jobs.add_log(job.job_id, "INFO", f"merged PDF part {p.part}: items {p.first_item}–{p.last_item}, "
                     f"{p.pages} page(s), {p.bytes} bytes",
                     {"key": p.key, "seconds": round(p.seconds, 3), "next_item": result.next_item})
    elif not parts:
        jobs.add_log(job.job_id, "INFO", "no merged PDF: no item succeeded with a PDF")
    return {"done": done, "parts": len(parts)}


def _email(ev: FinalizeEvent) -> dict[str, Any]:
    job = jobs.get_job(ev.job_id)
    status = ev.status or str(job.status)
    kind: mail.MailKind = "failure" if status == jobs.JobStatus.FAILED else "completion"
    flag = f"email_{kind}_r{ev.finalize_round}"
    if not job.notify_email:
        return {"sent": False, "reason": "no notify_email"}
    try:
        recipient = mail.check_address(job.notify_email)
    except mail.EmailRejected as exc:
        if state.claim(job.job_id, flag, {"state": "failed", "error": str(exc)}):
            jobs.add_log(job.job_id, "WARNING", f"notification email not sent: {exc}")
        return {"sent": False, "reason": str(exc)}
    if not state.claim(job.job_id, flag, {"state": "sending", "at": time.time()}):
        logger.info("email already sent for this round", extra={"flag": flag})
        return {"sent": False, "reason": "already sent"}
    archive_files = job.extra.get(f"archive_r{ev.finalize_round}", {})
    files = int(archive_files.get("files", 0)) if isinstance(archive_files, dict) else 0
    has_link = kind == "completion" and job.archive_key is not None
    merged = _merged_pdf_links(job, ev.finalize_round) if kind == "completion" else None
    content = mail.compose(
        job,
        kind=kind,
        status=status,
        reasons=mail.first_failures(job.job_id) if job.failed else [],
        link=links.download_url(job.job_id) if has_link else None,
        expires=links.expiry_text() if has_link or merged else None,
        files=files,
        merged_pdf_links=merged or [],
    )
    msg = mail.build_message(content, sender=config.ses_sender(), recipient=recipient, job_id=job.job_id)
    try:
        message_id = mail.send(msg, recipient=recipient)
    except mail.EmailRejected as exc:
        state.put(job.job_id, flag, {"state": "failed", "error": str(exc)})
        jobs.add_log(job.job_id, "WARNING", f"notification email to {recipient} not sent: {exc}")
        return {"sent": False, "reason": str(exc)}
    except (ClientError, BotoCoreError) as exc:
        # Nothing went out: give the claim back so the state machine's retry can send.
        state.release(job.job_id, flag)
        raise EmailTransientError(f"sending the email failed: {exc}") from exc
    state.put(job.job_id, flag, {"state": "sent", "message_id": message_id, "at": time.time()})
    jobs.add_log(job.job_id, "INFO", f"{kind} email sent to {recipient}", {"message_id": message_id})
    return {"sent": True, "message_id": message_id}


def _merged_pdf_links(job: jobs.Job, finalize_round: int) -> list[str] | None:
    """A ``merge_pdf`` job's merged PDF parts as links of the download route (``&part=N``, the
    archive link's HMAC token: they outlive this function's credentials, as a presigned URL
    would not); ``[]`` while it has none, None for other jobs."""
    if not job.extra.get("merge_pdf"):
        return None
    record = merge_pdf.merged_record(job, finalize_round)
    parts = record.get("parts", []) if record.get("done") else []
    return [links.download_url(job.job_id, part=int(p["part"])) for p in parts]


def _webhook(ev: FinalizeEvent) -> dict[str, Any]:
    job = jobs.get_job(ev.job_id)
    status = ev.status or str(job.status)
    flag = f"webhook_{status}_r{ev.finalize_round}"
    if not job.webhook_url:
        return {"delivered": False, "reason": "no webhook_url"}
    previous = job.extra.get(flag)
    if isinstance(previous, dict) and previous.get("state") in ("delivered", "failed"):
        return {"delivered": False, "reason": f"already {previous['state']}"}
    results = links.download_url(job.job_id) if status != jobs.JobStatus.FAILED and job.archive_key else None
    merged = _merged_pdf_links(job, ev.finalize_round)
    if merged is not None and results is None:
        merged = []  # a failed job: no results, so no merged PDF either
    body = webhook.payload(job, status=status, results_url=results, status_url=links.status_url(job.job_id),
                           merged_pdf_urls=merged)
    attempt = ev.attempt + 1
    try:
        delivery = webhook.deliver(job.webhook_url, body, secret=tenancy.webhook_secrets(job.tenant))
    except (webhook.WebhookRefused, webhook.WebhookRejected) as exc:
        state.put(job.job_id, flag, {"state": "failed", "error": str(exc), "attempts": attempt})
        jobs.add_log(job.job_id, "WARNING", f"webhook not delivered: {exc}", {"attempt": attempt})
        return {"delivered": False, "reason": str(exc)}
    except webhook.WebhookRetryableError as exc:
        jobs.add_log(
            job.job_id, "WARNING", f"webhook attempt {attempt} failed: {exc}; will retry", {"attempt": attempt}
        )
        raise
    state.put(job.job_id, flag, {"state": "delivered", "http_status": delivery.status, "attempts": attempt})
    jobs.add_log(
        job.job_id,
        "INFO",
        f"webhook delivered: HTTP {delivery.status}",
        {"attempt": attempt, "elapsed_ms": round(delivery.elapsed_ms, 1)},
    )
    return {"delivered": True, "http_status": delivery.status}


def _notify_failed(ev: FinalizeEvent) -> dict[str, Any]:
    """A notification gave up (retries exhausted, or an unexpected error): record it; the job
    still completes."""
    reason = error_text(ev.error)
    if ev.channel == "webhook":
        flag = f"webhook_{ev.status}_r{ev.finalize_round}"
        state.put(ev.job_id, flag, {"state": "failed", "error": reason})
    jobs.add_log(ev.job_id, "ERROR", f"{ev.channel or 'notification'} failed: {reason}")
    return {"recorded": True}


def _complete(ev: FinalizeEvent) -> dict[str, Any]:
    job = jobs.complete_job(ev.job_id, finalize_round=ev.finalize_round, archive_key=ev.archive_key)
    jobs.add_log(job.job_id, "INFO", f"job {job.status}: {job.succeeded} succeeded, {job.failed} failed")
    return {"status": str(job.status)}


def _fail(ev: FinalizeEvent) -> dict[str, Any]:
    job = jobs.get_job(ev.job_id)
    reason = error_text(ev.error)
    if _stale(job, ev):
        return outcome(job, proceed=False, status=str(job.status), reason="stale round")
    if job.is_final and job.status != jobs.JobStatus.FAILED:
        # The job already has its final status; a later step's failure must not undo it.
        jobs.add_log(job.job_id, "ERROR", f"finalize step failed after the job was {job.status}: {reason}")
        return outcome(job, proceed=False, status=str(job.status), reason="already final")
    job = jobs.fail_job(job.job_id, f"finalize failed: {reason}")
    jobs.add_log(job.job_id, "ERROR", f"finalize failed: {reason}")
    return outcome(job, proceed=True, status=str(jobs.JobStatus.FAILED))


def error_text(error: dict[str, Any] | None) -> str:
    """The message inside a Catch's ``{"Error", "Cause"}``; Lambda puts its error JSON in Cause."""
    if not error:
        return "unknown error"
    name = str(error.get("Error") or "Error")
    cause = error.get("Cause")
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
            if isinstance(parsed, dict) and parsed.get("errorMessage"):
                return f"{name}: {parsed['errorMessage']}"
        except ValueError:
            pass
        return f"{name}: {cause}" if cause else name
    return name
