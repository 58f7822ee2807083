"""The stats aggregates' pure parts: histogram buckets, percentiles, summing records, date ranges."""

from __future__ import annotations

import math
import random
from datetime import date

import pytest

from posterflow.errors import Reason
from posterflow.jobs import stats
from posterflow.jobs.errors import InvalidDateRange
from posterflow.jobs.models import ItemOutcome, ItemStatus


def test_buckets_are_log_spaced_contiguous_and_bounded() -> None:
    assert stats.bucket_of(0) == 0 and stats.bucket_of(0.4) == 0
    assert stats.bucket_of(1) == 1
    previous = 0
    for ms in range(1, 200_000, 7):
        b = stats.bucket_of(ms)
        assert b >= previous  # monotone
        previous = b
        if b < stats.BUCKETS - 1:
            lo, hi = stats.RATIO ** (b - 1), stats.RATIO ** b
            assert lo <= ms * (1 + 1e-12) and ms < hi * (1 + 1e-12)
    assert stats.bucket_of(10**12) == stats.BUCKETS - 1  # open-ended top bucket


def _nearest_rank(values: list[int], p: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


def test_percentiles_from_the_histogram_are_within_one_bucket_ratio() -> None:
    rng = random.Random(19)
    values = [round(rng.lognormvariate(6, 0.8)) + 1 for _ in range(2000)]
    histogram: dict[int, int] = {}
    for v in values:
        histogram[stats.bucket_of(v)] = histogram.get(stats.bucket_of(v), 0) + 1
    for p in (0.5, 0.95):
        got = stats.percentile(histogram, p, min(values), max(values))
        true = _nearest_rank(values, p)
        # The bucket's geometric middle: within sqrt(RATIO) of the exact value (+1 ms of rounding).
        bound = math.sqrt(stats.RATIO)
        assert got is not None and true / bound - 1 <= got <= true * bound + 1, (p, got, true)
    assert stats.percentile({}, 0.5) is None


def test_a_percentile_is_clamped_to_the_known_extremes() -> None:
    histogram = {stats.bucket_of(100): 3}
    assert stats.percentile(histogram, 0.5, 100, 100) == 100
    assert stats.percentile({stats.bucket_of(0.2): 1}, 0.95, 0, 0) == 0


def test_totals_sum_records_and_shape_timings() -> None:
    totals = stats.Totals()
    totals.add({"items": 3, "succeeded": 2, "failed": 1, "timed": 2, "sum_ms": 30, "min_ms": 10, "max_ms": 20,
                "h026": 1, "h032": 1, "jobs": 1, "job_ms_sum": 500, "hint": "not a bucket"})
    totals.add({"items": 1, "succeeded": 1, "timed": 1, "sum_ms": 5, "min_ms": 5, "max_ms": 5, "h018": 1})
    assert totals.counts() == {"jobs": 1, "items": 4, "succeeded": 3, "failed": 1}
    timing = totals.timing()
    assert (timing["avg"], timing["min"], timing["max"]) == (round(35 / 3, 2), 5, 20)
    assert 5 <= timing["p50"] <= 20 and 5 <= timing["p95"] <= 20
    assert totals.avg_job_duration_ms() == 500.0
    empty = stats.Totals()
    assert empty.timing() == {"avg": None, "min": None, "max": None, "p50": None, "p95": None}
    assert empty.avg_job_duration_ms() is None


def test_only_succeeded_items_with_a_total_contribute_a_duration() -> None:
    ok = ItemOutcome(item_id=0, status=ItemStatus.SUCCEEDED, timings={"total_ms": 41.5})
    assert stats.duration_ms(ok) == round(41.5)
    assert stats.duration_ms(ItemOutcome(item_id=1, status=ItemStatus.SUCCEEDED)) is None
    failed = ItemOutcome(item_id=2, status=ItemStatus.FAILED, error="x", error_code=Reason.MALFORMED,
                         timings={"total_ms": 3.0})
    assert stats.duration_ms(failed) is None


def test_keys_scope_tenant_section_version_day_and_shard() -> None:
    poster = stats.Target("t1", "poster", "speaker", 42)
    assert poster.pk() == "STATS#t1#poster#speaker"
    assert poster.sk("2026-12-01", 3) == "D#2026-12-01#V#000042#S3"
    crop = stats.Target("t1", "crop")
    assert crop.pk() == "STATS#t1#crop" and crop.sk("2026-12-01", 0) == "D#2026-12-01#S0"
    # A day's records of a section lie inside the range query's bounds, and no other day's.
    lo, hi = "D#2026-12-01", "D#2026-12-01#~"
    assert lo <= poster.sk("2026-12-01", 0) <= hi and not lo <= poster.sk("2026-12-02", 0) <= hi
    assert {stats.shard_of(f"job{i}") for i in range(100)} == set(range(stats.SHARDS))


def test_date_range_defaults_and_limits() -> None:
    today = date(2026, 12, 1)
    assert stats.date_range(None, None, today=today) == ("2026-11-02", "2026-12-01")  # 30 days
    assert stats.date_range("2026-01-01", "2026-01-01") == ("2026-01-01", "2026-01-01")
    assert stats.date_range("2025-12-01", "2026-12-01") == ("2025-12-01", "2026-12-01")  # 366 days
    with pytest.raises(InvalidDateRange) as info:
        stats.date_range("2025-11-30", "2026-12-01")
    assert info.value.reason == Reason.INVALID_DATE and "366" in info.value.message


@pytest.mark.parametrize("bad", ["2026-13-01", "2026-02-30", "2026/01/01", "20260101", "2026-1-01",
                                 "٢٠٢٦-٠١-٠١", "2026-01-01T00:00", "", "yesterday"])
def test_bad_dates_are_refused_with_the_format(bad: str) -> None:
    with pytest.raises(InvalidDateRange) as info:
        stats.date_range(bad, "2026-12-01")
    assert info.value.reason == Reason.INVALID_DATE


def test_since_after_until_is_refused() -> None:
    with pytest.raises(InvalidDateRange, match="after"):
        stats.date_range("2026-12-02", "2026-12-01")
