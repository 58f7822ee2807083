"""Stats routes: per template section (and version) and for crops, read from the write-time
aggregates of :mod:`posterflow.jobs.stats` (never a scan), for the calling tenant only.

``since``/``until`` are UTC days ``YYYY-MM-DD`` (default: the last 30 days ending today), at
most 366 days; anything else is 422 ``invalid_date`` naming the format and the allowed range.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from posterflow import tenancy
from posterflow.api.errors import ApiError
from posterflow.errors import Reason
from posterflow.jobs import stats
from posterflow.jobs.errors import InvalidDateRange
from posterflow.posters.template_store import SECTION

router = Router()

_RANGE_DETAILS = {"format": "YYYY-MM-DD", "default_days": stats.DEFAULT_RANGE_DAYS,
                  "max_days": stats.MAX_RANGE_DAYS}


def _range(since: str | None, until: str | None) -> tuple[str, str]:
    try:
        return stats.date_range(since or None, until or None)
    except InvalidDateRange as exc:
        raise InvalidDateRange(exc.message, details={**_RANGE_DETAILS, "since": since, "until": until}) from None


@router.get("/api/stats/templates")
def template_stats(section: Annotated[str | None, Query()] = None, since: Annotated[str | None, Query()] = None,
                   until: Annotated[str | None, Query()] = None) -> dict[str, Any]:
    """Jobs, items, succeeded, failed, generation time (avg/min/max/p50/p95 ms) and average
    job duration per template section over the days, each with its versions (newest first)."""
    start, end = _range(since, until)
    if section is not None and not SECTION.match(section):
        raise ApiError(Reason.INVALID_REQUEST, f"invalid section {section[:80]!r}",
                       {"allowed": "letters, digits and '-', at most 64"})
    return stats.template_stats(tenancy.current(), start, end, section=section)


@router.get("/api/stats/crops")
def crop_stats(since: Annotated[str | None, Query()] = None,
               until: Annotated[str | None, Query()] = None) -> dict[str, Any]:
    """The same figures for crop jobs, with the faces found."""
    start, end = _range(since, until)
    return stats.crop_stats(tenancy.current(), start, end)
