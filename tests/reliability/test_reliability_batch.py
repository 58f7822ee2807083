"""A poster batch with poison items and a worker killed mid-run: every item ends succeeded or
failed with its reason, the counters equal the item records, nothing is counted twice, and
the finalize workflow runs exactly once. ``make test`` runs 300 items; ``make soak`` 10,000."""

from __future__ import annotations

from typing import Any

import pytest

from posterflow_local.faults import FaultConfig
from tests.reliability.scenario import run_batch

pytestmark = pytest.mark.browser

# Killed or dropped batches come back after this many seconds instead of the render queue's
# 12-minute visibility timeout.
REDELIVERY_S = 2


def _check(cloud: Any, n: int, timeout: float) -> None:
    result, figures = run_batch(
        cloud, scenario=f"batch-{n}-poison-kill", n=n, poison_every=20,
        fault=FaultConfig(redelivery_s=REDELIVERY_S), kill_after_items=n // 4, drop_batches=1, timeout=timeout)
    assert result.problems() == [], result
    assert result.items == n and result.processed == n
    assert result.by_status == {"succeeded": n - n // 20, "failed": n // 20}
    assert result.status == "completed_with_errors"
    # The faults really happened, and their batches came back.
    assert figures.faults["killed_instances"] == 1 and figures.faults["dropped_batches"] == 1
    assert figures.redelivered >= 2


def test_batch_with_poison_and_a_killed_worker(cloud: Any) -> None:
    _check(cloud, 300, timeout=80)


@pytest.mark.slow
def test_batch_with_poison_and_a_killed_worker_soak(cloud: Any) -> None:
    _check(cloud, 10_000, timeout=1800)
