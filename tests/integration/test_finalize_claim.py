"""The write that completes a job starts finalize even when DynamoDB answers a 500 after the
finalize claim landed (the SDK's retry then finds the claim taken: by this same call)."""

from __future__ import annotations

from typing import Any

from posterflow import aws, jobs


def test_a_claim_that_landed_before_a_500_still_starts_finalize(cloud: Any) -> None:
    job = jobs.create_job("poster", 1, template_id="testimonial_latest")
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=0, entity_id="e0", input={"n": 0})])
    cloud.faults.fail_after_applying("dynamodb", "finalize_claim_token")
    try:
        outcome = jobs.finish_item(job.job_id, 0, status="succeeded", output_key="outputs/x.png")
        injected = dict(cloud.faults.stats.injected)
    finally:
        cloud.faults.clear()
    assert injected.get("dynamodb:InternalError:applied") == 1, injected
    assert outcome.finalize_started
    sfn = aws.client("stepfunctions")
    arn = cloud.refs.state_machine_arns["finalize"]
    names = [e["name"] for e in sfn.list_executions(stateMachineArn=arn, maxResults=1000)["executions"]]
    assert job.job_id in names
