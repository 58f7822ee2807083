"""Deployment settings read from CDK context, validated before any construct is built.

The context keys live in ``cdk.json``; ``cdk synth -c key=value`` and ``python infra/app.py
-c key=value`` override them. Every problem is reported as one line naming the key, so a typo
in ``cdk.json`` is a clear message instead of a jsii stack trace from deep inside a construct.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from posterflow import resources as r

CTX_PREFIX = "posterflow:prefix"
CTX_RETENTION_DAYS = "posterflow:retentionDays"
CTX_SES_SENDER = "posterflow:sesSender"
CTX_ALARM_EMAIL = "posterflow:alarmEmail"
# on (default) / off: whether render and crop reserve the sum of their lanes' maximum concurrency
# (off for accounts on a low concurrency quota; infra/README.md, "Priority lanes").
CTX_RESERVED_CONCURRENCY = "posterflow:reservedConcurrency"

# S3 bucket names are the tightest constraint on the prefix: "<prefix>-data" must be a valid,
# lower-case bucket name, and "<prefix>-splitter" a valid function name (64 chars).
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
# Deliberately simple: SES verifies the address; this only catches typos and empty values.
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
# S3 lifecycle expiration needs >= 1 day; ten years is a sanity bound against unit mistakes.
MAX_RETENTION_DAYS = 3650


class ContextError(ValueError):
    """A context value is missing or invalid; the message is meant for a person."""


@dataclass(frozen=True)
class DeploySettings:
    prefix: str
    retention_days: int
    ses_sender: str
    alarm_email: str | None
    reserve_concurrency: bool = True

    def spec(self) -> r.StackSpec:
        """The resource spec with this deployment's values applied (names, retention, sender)."""
        base = r.stack_spec(self.prefix)
        return base.model_copy(
            update={
                "ses_sender": self.ses_sender,
                "job_retention_days": self.retention_days,
                "bucket": base.bucket.model_copy(update={"retention_days": self.retention_days}),
            }
        )


def _retention(value: Any) -> int:
    # bool is an int subclass; "true" days is a mistake, not 1 day.
    if isinstance(value, bool):
        raise ContextError(f"{CTX_RETENTION_DAYS} must be a whole number of days, got {value!r}")
    try:
        days = int(str(value).strip())
    except ValueError:
        raise ContextError(f"{CTX_RETENTION_DAYS} must be a whole number of days, got {value!r}") from None
    if not 1 <= days <= MAX_RETENTION_DAYS:
        raise ContextError(f"{CTX_RETENTION_DAYS} must be between 1 and {MAX_RETENTION_DAYS}, got {days}")
    return days


def _email(key: str, value: Any) -> str:
    text = str(value).strip()
    if not _EMAIL_RE.match(text):
        raise ContextError(f"{key} must be an email address, got {value!r}")
    return text


_ON = ("on", "true", "yes", "1")
_OFF = ("off", "false", "no", "0")


def _switch(key: str, value: Any, *, default: bool) -> bool:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    text = str(value).strip().lower()  # JSON true/false arrive as bool: str() gives True/False
    if text in _ON:
        return True
    if text in _OFF:
        return False
    raise ContextError(f"{key} must be on or off, got {value!r}")


def _prefix(value: Any) -> str:
    text = str(value).strip()
    if not _PREFIX_RE.match(text):
        raise ContextError(
            f"{CTX_PREFIX} must be 3-40 characters of lower-case letters, digits and '-', "
            f"starting with a letter (it names the S3 bucket), got {value!r}"
        )
    return text


def _required(context: Mapping[str, Any], key: str) -> Any:
    value = context.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ContextError(f"missing context value {key} (set it in cdk.json or pass -c {key}=...)")
    return value


def parse_settings(context: Mapping[str, Any]) -> DeploySettings:
    """Validate the context; raise :class:`ContextError` with a one-line message."""
    alarm = context.get(CTX_ALARM_EMAIL)
    return DeploySettings(
        prefix=_prefix(_required(context, CTX_PREFIX)),
        retention_days=_retention(_required(context, CTX_RETENTION_DAYS)),
        ses_sender=_email(CTX_SES_SENDER, _required(context, CTX_SES_SENDER)),
        alarm_email=_email(CTX_ALARM_EMAIL, alarm) if alarm not in (None, "") else None,
        reserve_concurrency=_switch(CTX_RESERVED_CONCURRENCY, context.get(CTX_RESERVED_CONCURRENCY),
                                    default=True),
    )
