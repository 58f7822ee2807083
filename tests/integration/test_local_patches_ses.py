"""Mail sent through the local cloud's SES is also written as .eml, and SES answers what moto's
own code answers: the same responses and errors, with the patch and without."""

from __future__ import annotations

import email
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from posterflow import aws

SENDER = "patches@example.com"


def _sends() -> list[Any]:
    ses = aws.client("ses")
    ses.verify_email_identity(EmailAddress=SENDER)
    raw = EmailMessage()
    raw["Subject"], raw["From"], raw["To"] = "raw", SENDER, "to@example.com"
    raw.set_content("raw body")
    calls = [
        ("html", lambda: ses.send_email(Source=SENDER, Destination={"ToAddresses": ["to@example.com"],
                                                                    "CcAddresses": ["cc@example.com"]},
                                        Message={"Subject": {"Data": "Poster ready"},
                                                 "Body": {"Html": {"Data": "<html><p>Done</p></html>"}}})),
        ("text", lambda: ses.send_email(Source=SENDER, Destination={"ToAddresses": ["to@example.com"]},
                                        Message={"Subject": {"Data": "Plain"}, "Body": {"Text": {"Data": "Done"}}})),
        ("raw", lambda: ses.send_raw_email(RawMessage={"Data": raw.as_bytes()})),
        ("unverified", lambda: ses.send_email(Source="nobody@unverified.example",
                                              Destination={"ToAddresses": ["to@example.com"]},
                                              Message={"Subject": {"Data": "x"}, "Body": {"Text": {"Data": "x"}}})),
    ]
    seen: list[Any] = []
    for label, call in calls:
        try:
            response = call()
            seen.append((label, sorted(k for k in response if k != "ResponseMetadata"), bool(response["MessageId"])))
        except ClientError as exc:
            seen.append((label, exc.response["Error"]["Code"], exc.response["Error"]["Message"]))
    return seen


@pytest.fixture
def moto_ses(cloud: object) -> Iterator[None]:
    from posterflow_local.patches import ses_mailbox

    with ses_mailbox.PATCH.removed():
        yield


def test_same_answers_as_moto_and_mail_written(cloud: Any, request: pytest.FixtureRequest) -> None:
    mail = Path(cloud.endpoints()["mail"])
    before = set(mail.glob("*.eml")) if mail.exists() else set()
    patched = _sends()
    written = sorted(set(mail.glob("*.eml")) - before)
    request.getfixturevalue("moto_ses")
    reference = _sends()
    assert patched == reference
    assert set(mail.glob("*.eml")) - before == set(written)  # moto's own code writes nothing
    assert reference[-1][1] == "MessageRejected"
    messages = [email.message_from_bytes(p.read_bytes()) for p in written]
    assert [m["Subject"] for m in messages] == ["Poster ready", "Plain", "raw"]
    assert messages[0]["Cc"] == "cc@example.com" and messages[0].get_content_subtype() == "html"
    assert all(p.name.split("-", 1)[1].removesuffix(".eml") for p in written)  # <n>-<message id>.eml
