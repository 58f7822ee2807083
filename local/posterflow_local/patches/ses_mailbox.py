"""Every email sent through the embedded SES is also written as an ``.eml`` file.

moto keeps sent mail in memory only; a person running the demo wants to open the message,
so the local cloud wraps moto's SES backend and writes each accepted message to
``<out>/mail/<n>-<message id>.eml`` (the directory set by :func:`deliver_to`). moto's answer
is returned unchanged. Checked by tests/integration/test_local_patches_ses.py.
"""

from __future__ import annotations

import itertools
import threading
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from moto.ses import models as ses_models

from posterflow_local.patches._patch import Patch, Replacement

_lock = threading.Lock()
_counter = itertools.count(1)
_mail_dir: Path | None = None


def _write(message_id: str, data: bytes) -> None:
    if _mail_dir is None:
        return
    _mail_dir.mkdir(parents=True, exist_ok=True)
    with _lock:
        n = next(_counter)
    (_mail_dir / f"{n:04d}-{message_id}.eml").write_bytes(data)


_Backend = ses_models.SESBackend
_original_send = _Backend.send_email
_original_raw = _Backend.send_raw_email


def deliver_to(mail_dir: Path | None) -> None:
    """Write sent mail under ``mail_dir`` from now on (None: keep it in memory only, as moto does)."""
    global _mail_dir
    _mail_dir = mail_dir


def _send_email(self: Any, source: str, subject: str, body: str, destinations: dict[str, list[str]]) -> Any:
    message = _original_send(self, source, subject, body, destinations)
    eml = EmailMessage()
    eml["Subject"] = subject
    eml["From"] = source
    eml["To"] = ", ".join(destinations.get("ToAddresses", []))
    if destinations.get("CcAddresses"):
        eml["Cc"] = ", ".join(destinations["CcAddresses"])
    eml["Message-ID"] = f"<{message.id}@local.posterflow>"
    subtype = "html" if "<html" in body.lower() or "</" in body else "plain"
    eml.set_content(body, subtype=subtype)
    _write(message.id, bytes(eml))
    return message


def _send_raw_email(self: Any, source: str, destinations: list[str], raw_data: str) -> Any:
    message = _original_raw(self, source, destinations, raw_data)
    data = raw_data.encode("utf-8", "surrogateescape") if isinstance(raw_data, str) else raw_data
    _write(message.id, data)
    return message


PATCH = Patch("ses_mailbox", [
    Replacement(_Backend, "send_email", _send_email),
    Replacement(_Backend, "send_raw_email", _send_raw_email),
])
