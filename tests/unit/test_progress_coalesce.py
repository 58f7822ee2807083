"""The progress gate: pace, order, waiting instead of dropping, once-only announcements."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from posterflow.progress.coalesce import Claim, Gate, Order


@dataclass
class Clock:
    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class MemoryStore:
    """The DynamoDB store's conditions, in memory (shared by several gates = instances)."""

    sent: dict[str, tuple[float, Order]] = field(default_factory=dict)
    done: dict[str, int] = field(default_factory=dict)

    def claim(self, job_id: str, now: float, order: Order, interval: float, expires_at: int | None) -> Claim:
        last = self.sent.get(job_id)
        if last is not None and last[1] > order:
            return Claim(ok=False, stale=True)
        if last is not None and last[0] > now - interval:
            return Claim(ok=False, retry_at=last[0] + interval)
        self.sent[job_id] = (now, order)
        return Claim(ok=True)

    def announce_once(self, job_id: str, round_: int, expires_at: int | None) -> bool:
        if self.done.get(job_id, -1) >= round_:
            return False
        self.done[job_id] = round_
        return True


def _gate(store: MemoryStore, clock: Clock) -> Gate:
    return Gate(store, interval=0.25, clock=clock.time, sleep=clock.sleep)


def test_frames_are_paced_at_most_four_a_second_without_dropping_any() -> None:
    clock, store = Clock(), MemoryStore()
    gate = _gate(store, clock)
    times = []
    for processed in range(1, 41):
        clock.now += 0.01  # a stream batch every 10 ms
        assert gate.acquire("j", (0, processed))
        times.append(clock.now)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.25 - 1e-9
    # Every batch's state went out: the waits, not drops, did the coalescing.
    assert store.sent["j"][1] == (0, 40)


def test_a_quiet_job_is_not_delayed() -> None:
    clock, store = Clock(), MemoryStore()
    gate = _gate(store, clock)
    assert gate.acquire("j", (0, 1))
    clock.now += 5
    assert gate.acquire("j", (0, 2))
    assert clock.slept == []


def test_jobs_have_separate_slots() -> None:
    clock, store = Clock(), MemoryStore()
    gate = _gate(store, clock)
    assert gate.acquire("a", (0, 1))
    assert gate.acquire("b", (0, 1))
    assert clock.slept == []


def test_another_instance_waits_for_the_shared_slot() -> None:
    clock, store = Clock(), MemoryStore()
    first, second = _gate(store, clock), _gate(store, clock)
    assert first.acquire("j", (0, 5))
    clock.now += 0.1
    assert second.acquire("j", (0, 6))
    assert sum(clock.slept) >= 0.15 - 1e-9
    assert store.sent["j"] == (clock.now, (0, 6))


def test_an_older_state_after_a_newer_one_is_dropped() -> None:
    clock, store = Clock(), MemoryStore()
    first, second = _gate(store, clock), _gate(store, clock)
    assert first.acquire("j", (0, 10))
    clock.now += 1
    assert not second.acquire("j", (0, 9))
    assert store.sent["j"][1] == (0, 10)


def test_a_retry_round_starts_over_from_lower_counts() -> None:
    clock, store = Clock(), MemoryStore()
    gate = _gate(store, clock)
    assert gate.acquire("j", (0, 100))
    clock.now += 1
    assert gate.acquire("j", (1, 95))
    clock.now += 1
    assert not gate.acquire("j", (0, 100))


def test_job_end_is_announced_once_per_round() -> None:
    gate = _gate(MemoryStore(), Clock())
    assert gate.announce_once("j", 0)
    assert not gate.announce_once("j", 0)
    assert gate.announce_once("j", 1)
    assert not gate.announce_once("j", 0)
