"""Priority lanes: which queue a job's work goes to, decided in one place.

A job's ``priority`` follows BullMQ's convention (seed 004's callers send it): an integer from
1, the most urgent, to 10, the least; absent means normal. Priorities 1–3 run in the
**urgent** lane, 4–10 and absent in the **normal** lane. Each lane of the render and crop work
is its own SQS queue with its own DLQ and event-source mapping (the resource spec,
:mod:`posterflow.resources`), and the urgent lane has capacity of its own, so a small urgent
job overtakes a large campaign instead of waiting behind it. Within a lane, messages keep
SQS's (roughly first-in, first-out) order: 1 and 3 are the same lane.

Everything that sends work (the API's direct enqueue, the splitter, retry) asks
:func:`queue_key`; a redelivered message stays on the queue it was received from.
"""

from __future__ import annotations

from typing import Any

from posterflow import resources
from posterflow.errors import PosterflowError, Reason
from posterflow.resources import LaneName

PRIORITY_MIN = 1
PRIORITY_MAX = 10
URGENT_UP_TO = 3
"""Priorities up to this one (1–3) run in the urgent lane."""
URGENT: LaneName = "urgent"
NORMAL: LaneName = "normal"
LANES: tuple[LaneName, ...] = (URGENT, NORMAL)
PRIORITY_RULE = (f"priority must be an integer from {PRIORITY_MIN} (most urgent) to {PRIORITY_MAX} (least urgent), "
                 f"or absent; {PRIORITY_MIN}–{URGENT_UP_TO} run in the urgent lane")
# A metadata value is text: at most two ASCII digits ("10"), so nothing long is ever parsed.
_MAX_TEXT = 2


class InvalidPriority(PosterflowError):
    """A priority outside 1–10 (or not an integer)."""

    reason = Reason.VALIDATION_ERROR

    def __init__(self, value: Any) -> None:
        shown = value if isinstance(value, int | float | bool | None) else str(value)[:20]
        super().__init__(PRIORITY_RULE, details={"min": PRIORITY_MIN, "max": PRIORITY_MAX, "value": shown})


def check_priority(value: object) -> int | None:
    """``value`` if it is a priority (an ``int`` from 1 to 10) or ``None``; else
    :class:`InvalidPriority`. A bool is not an integer here, nor is ``3.0`` or ``"3"``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not PRIORITY_MIN <= value <= PRIORITY_MAX:
        raise InvalidPriority(value)
    return value


def priority_from_text(text: str | None) -> int | None:
    """A priority written as text (S3 object metadata ``priority``, a form field): ``None`` when
    absent or blank, else one or two ASCII digits within 1–10 (:class:`InvalidPriority`)."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    if len(value) > _MAX_TEXT or not (value.isascii() and value.isdigit()):
        raise InvalidPriority(value)
    return check_priority(int(value))


def lane_of(priority: int | None) -> LaneName:
    """The lane of a job with ``priority``: 1–3 urgent; 4–10 and absent normal."""
    return URGENT if priority is not None and priority <= URGENT_UP_TO else NORMAL


def queue_key(work: str, priority: int | None) -> str:
    """The resource spec's key of the queue for ``work`` (``"render"``, ``"crop"``) of a job
    with ``priority``: ``render`` / ``render_urgent``, ``crop`` / ``crop_urgent``. The key
    names the queue's URL variable (``config.QUEUE_URL.env_name(key)``)."""
    return resources.stack_spec().lane(work, lane_of(priority)).key


def lane_queues(work: str) -> tuple[resources.QueueSpec, ...]:
    """Every lane's queue for ``work``, urgent first."""
    spec = resources.stack_spec()
    return tuple(spec.lane(work, lane) for lane in LANES)
