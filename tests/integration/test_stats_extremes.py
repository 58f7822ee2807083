"""min_ms/max_ms of a stats aggregate (jobs/stats.py) on the local cloud's DynamoDB: a warm
instance skips the conditional update it knows would fail (its remembered min is <= the batch's
min, its remembered max >= the batch's max), and the stored extremes stay exact when several
instances, each with its own memory, record batches of one aggregate at once."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from posterflow.jobs import _ddb as d
from posterflow.jobs import stats


class _PerThread(MutableMapping[Any, Any]):
    """stats._EXTREMES with one dict per thread: each thread acts as a separate warm instance."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _d(self) -> dict[Any, Any]:
        if not hasattr(self._local, "d"):
            self._local.d = {}
        return self._local.d  # type: ignore[no-any-return]

    def __getitem__(self, key: Any) -> Any:
        return self._d()[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._d()[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._d()[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._d())

    def __len__(self) -> int:
        return len(self._d())


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The conditional min/max updates made (attribute names), as they are attempted."""
    made: list[str] = []
    real = stats._extreme

    def counted(recording: stats.Recording, attr: str, value: int, better: str) -> int | None:
        made.append(attr)
        return real(recording, attr, value, better)

    monkeypatch.setattr(stats, "_extreme", counted)
    return made


def _recording(pk: str, durations: list[int]) -> stats.Recording:
    return stats.Recording(operation={}, pk=pk, sk="D#2026-01-01#V#000001#S0", durations=durations)


def _stored(pk: str) -> tuple[int | None, int | None]:
    raw = d.ddb().get_item(TableName=d.table(), Key=d.key(pk, "D#2026-01-01#V#000001#S0"),
                           ConsistentRead=True).get("Item") or {}
    rec = d.from_item(raw)
    lo, hi = rec.get("min_ms"), rec.get("max_ms")
    return (None if lo is None else int(lo)), (None if hi is None else int(hi))


def test_a_remembered_extreme_skips_only_updates_that_could_not_move_it(
        cloud: Any, writes: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    pk = f"STATS#extremes-{uuid.uuid4().hex[:8]}#poster#s"
    a: dict[Any, Any] = {}
    b: dict[Any, Any] = {}
    monkeypatch.setattr(stats, "_EXTREMES", a)
    stats.after_commit(_recording(pk, [50, 60]))
    assert writes == ["min_ms", "max_ms"] and _stored(pk) == (50, 60)
    # Inside what A knows: nothing to write.
    writes.clear()
    stats.after_commit(_recording(pk, [55, 58, 60]))
    assert writes == [] and _stored(pk) == (50, 60)

    # Another instance widens the range; A's memory is now stale (50, 60).
    monkeypatch.setattr(stats, "_EXTREMES", b)
    stats.after_commit(_recording(pk, [10, 100]))
    assert _stored(pk) == (10, 100)

    # A's batch lies outside A's memory: A tries both updates, both fail their condition, the
    # record keeps the true extremes and A learns them.
    monkeypatch.setattr(stats, "_EXTREMES", a)
    writes.clear()
    stats.after_commit(_recording(pk, [30, 70]))
    assert writes == ["min_ms", "max_ms"] and _stored(pk) == (10, 100)
    writes.clear()
    stats.after_commit(_recording(pk, [20, 90]))
    assert writes == [] and _stored(pk) == (10, 100)
    # Just past what A knows, on one side only: that side alone is written.
    stats.after_commit(_recording(pk, [9, 90]))
    assert writes == ["min_ms"] and _stored(pk) == (9, 100)
    writes.clear()
    stats.after_commit(_recording(pk, [40, 101]))
    assert writes == ["max_ms"] and _stored(pk) == (9, 101)


def test_racing_instances_with_their_own_memory_keep_the_exact_extremes(
        cloud: Any, writes: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stats, "_EXTREMES", _PerThread())
    pk = f"STATS#extremes-race-{uuid.uuid4().hex[:8]}#poster#s"
    rng = random.Random(7)
    batches = [[rng.randint(5, 5000) for _ in range(rng.randint(1, 10))] for _ in range(160)]

    def record(chunk: list[list[int]]) -> None:
        for durations in chunk:
            stats.after_commit(_recording(pk, durations))

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(record, [batches[k::4] for k in range(4)]))
    every = [ms for batch in batches for ms in batch]
    assert _stored(pk) == (min(every), max(every))
    # The memory saves most writes: without it every batch would make two.
    assert len(writes) < len(batches)
