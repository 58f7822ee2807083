"""AWS-shaped events from ``events/``, with the test's own resources filled in.

A fixture is an event exactly as AWS delivers it (an SQS record carrying an S3 notification,
an API Gateway REST proxy request, a DynamoDB stream batch, a Step Functions task input);
only what depends on the deployment or the test (a bucket, a queue ARN, a job id) is a
``${placeholder}``, which :func:`load_event` fills::

    event = load_event("splitter/s3-put-via-sqs", bucket=b, key=k, size=12, etag='"abc"',
                       queue_arn=arn)

Filling rules, so a fixture stays a real shape whatever the values are:

- a string that is exactly ``${name}`` becomes the value itself, so ``"size": "${size}"`` with
  ``size=12`` is the number 12 (S3 sends sizes as numbers);
- a string that holds a JSON document (an SQS ``body``) is parsed, filled by these same
  rules and serialised again, so a value is escaped as the inner JSON needs it;
- anywhere else ``${name}`` is replaced by the value's text;
- an SQS record's ``md5OfBody`` is recomputed for the filled body, as SQS would have it.

A placeholder left unfilled, or a value given for a placeholder the fixture does not have,
is an error naming it: an event with ``${bucket}`` in it would otherwise fail far away.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

Fill = str | int | float | bool | None


class UnfilledPlaceholder(KeyError):
    """The fixture has placeholders the caller did not fill."""

    def __init__(self, name: str, missing: list[str]) -> None:
        self.missing = missing
        listed = ", ".join(f"${{{m}}}" for m in missing)
        super().__init__(f"event {name!r} has unfilled placeholder(s) {listed}: pass "
                         + ", ".join(f"{m}=..." for m in missing) + " to load_event")

    def __str__(self) -> str:
        # KeyError's str() is the repr of its argument; the message reads better plain.
        return str(self.args[0])


def event_path(name: str) -> Path:
    """``events/<name>.json``; ``name`` is relative to ``events/`` and has no suffix."""
    path = (EVENTS_DIR / f"{name}.json").resolve()
    if EVENTS_DIR not in path.parents:
        raise ValueError(f"event name {name!r} points outside {EVENTS_DIR}")
    if not path.is_file():
        raise FileNotFoundError(f"no event fixture {path.relative_to(EVENTS_DIR.parent)}")
    return path


def placeholders(value: Any) -> set[str]:
    """Every placeholder name in a (raw or filled) event, nested JSON documents included."""
    if isinstance(value, dict):
        return set().union(*(placeholders(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(placeholders(v) for v in value)) if value else set()
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    return set()


def _embedded_json(text: str) -> Any | None:
    """The JSON object or array ``text`` holds (an SQS body), else None."""
    if not text.lstrip().startswith(("{", "[")):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict | list) else None


def _fill(value: Any, fill: dict[str, Fill]) -> Any:
    if isinstance(value, dict):
        out = {k: _fill(v, fill) for k, v in value.items()}
        if isinstance(out.get("body"), str) and "md5OfBody" in out and out["body"] != value.get("body"):
            out["md5OfBody"] = hashlib.md5(out["body"].encode()).hexdigest()  # SQS computes it over the body as sent
        return out
    if isinstance(value, list):
        return [_fill(v, fill) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = PLACEHOLDER.fullmatch(value)
    if whole and whole.group(1) in fill:
        return fill[whole.group(1)]
    inner = _embedded_json(value)
    if inner is not None:
        # Compact, as SQS bodies from S3 and from posterflow's own senders are.
        return json.dumps(_fill(inner, fill), ensure_ascii=False, separators=(",", ":"))

    def text(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(fill[name]) if name in fill else match.group(0)

    return PLACEHOLDER.sub(text, value)


def load_event(name: str, **fill: Fill) -> dict[str, Any]:
    """The event in ``events/<name>.json`` with its ``${placeholders}`` filled from ``fill``.

    Raises :class:`UnfilledPlaceholder` when a placeholder is left over, ``TypeError`` for a
    value whose placeholder the fixture does not have (a misspelt name)."""
    raw = json.loads(event_path(name).read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"event {name!r} is not a JSON object")
    wanted = placeholders(raw)
    unused = sorted(set(fill) - wanted)
    if unused:
        raise TypeError(f"event {name!r} has no placeholder(s) {', '.join(unused)}; "
                        f"it has: {', '.join(sorted(wanted)) or 'none'}")
    filled: dict[str, Any] = _fill(raw, fill)
    # A value may itself contain "${...}" text; only the fixture's own names count as unfilled.
    missing = sorted(wanted - set(fill))
    if missing:
        raise UnfilledPlaceholder(name, missing)
    return filled
