"""AWS errors and a Chromium killed mid-render, on the local cloud: nothing is lost.

5% of S3 and DynamoDB calls (and 2% of SQS calls) fail with throttling or 500s, some of the
500s after the write was applied; botocore's retries and SQS redelivery absorb them."""

from __future__ import annotations

from typing import Any

import pytest

from posterflow import jobs
from posterflow_local.faults import FaultConfig
from tests.reliability.scenario import engine_stats, run_batch, submit, upload_template, wait_final

pytestmark = pytest.mark.browser

# Half the 500s to writes land first: a 100-item batch makes few enough writes (workers record
# a batch of outcomes in one transaction) that a smaller share could leave none applied.
ERRORS = FaultConfig(error_rates={"s3": 0.05, "dynamodb": 0.05, "sqs": 0.05}, throttle_share=0.25,
                     applied_share=0.5, redelivery_s=2, seed=9)


def _check_errors(cloud: Any, n: int, timeout: float) -> None:
    result, figures = run_batch(cloud, scenario=f"batch-{n}-aws-errors", n=n, poison_every=20, fault=ERRORS,
                                timeout=timeout)
    assert result.problems() == [], result
    assert result.by_status == {"succeeded": n - n // 20, "failed": n // 20}
    # Faults were really injected into S3 and DynamoDB (SQS makes too few calls in a small batch
    # to be sure of one), including writes that landed before the error.
    injected = figures.faults["injected"]
    for service in ("s3", "dynamodb"):
        assert any(k.startswith(f"{service}:") for k in injected), injected
    assert any(k.endswith(":applied") for k in injected), injected


def test_aws_errors_lose_nothing(cloud: Any) -> None:
    _check_errors(cloud, 100, timeout=150)


@pytest.mark.slow
def test_aws_errors_lose_nothing_soak(cloud: Any) -> None:
    _check_errors(cloud, 2_000, timeout=1800)


def test_chromium_killed_mid_render_relaunches_and_items_succeed(cloud: Any) -> None:
    section = upload_template(cloud)
    before = engine_stats()
    with cloud.faults.active(FaultConfig(redelivery_s=2)) as stats:
        # Warm the engine first so the kill hits a browser that is rendering, not starting.
        wait_final(submit(cloud, section, [{"entity_id": "warm", "name": "w"}]), timeout=60)
        cloud.faults.kill_chromium_mid_render(renders=1)
        items = [{"entity_id": f"c{i}", "name": f"n{i}"} for i in range(20)]
        job = wait_final(submit(cloud, section, items), timeout=80)
    after = engine_stats()
    assert stats.chromium_kills >= 1
    assert after["launches"] > before["launches"] and after["crashes"] > before["crashes"]
    assert (job.succeeded, job.failed, job.processed) == (20, 0, 20)
    records = list(jobs.iter_items(job.job_id, consistent=True))
    assert {r.status for r in records} == {"succeeded"} and all(r.attempts == 1 for r in records)
