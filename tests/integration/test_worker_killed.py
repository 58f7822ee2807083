"""A render worker killed mid-batch loses nothing: its unacknowledged messages come back after
the visibility timeout and are rendered and counted once.

The real render queue's visibility timeout is 720 s, so the test feeds a queue of its own
(2 s visibility) to a function that wraps the real render function: the first invocations
render and record half of their batch, then die before the batch is acknowledged.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from posterflow import aws, jobs
from posterflow.posters import template_store
from tests.integration.helpers import make_queue, upload_card_template, wait_for

N = 30


def test_killed_worker_loses_nothing(cloud: Any) -> None:
    tv = template_store.get(upload_card_template(cloud, "killed", "<p>{{ name }}</p>", name="Killed"))
    real = cloud.runtime.get(cloud.spec.function("render").name)
    kills = {"left": 2, "half_done": 0}

    def worker(event: dict[str, Any], context: Any) -> Any:
        records = event["Records"]
        if kills["left"] > 0:
            kills["left"] -= 1
            half = records[: max(1, len(records) // 2)]
            assert not real.invoke({"Records": half}).failed
            kills["half_done"] += len(half)
            raise RuntimeError("execution environment killed mid-batch")
        result = real.invoke(event)
        if result.failed:
            raise RuntimeError(result.error_message)
        return result.payload

    name = f"killable-render-{uuid.uuid4().hex[:6]}"
    cloud.register_function(name, worker, timeout_s=120)
    queue, _dlq = make_queue(visibility_s=2, max_receive=5)
    job = jobs.create_job("poster", N, template_id=tv.id, template_section=tv.section, template_version=tv.version)
    specs = [{"template_id": tv.id, "custom_data": {"name": f"P{i}"}, "entity_id": f"e{i}"} for i in range(N)]
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=i, entity_id=f"e{i}", input=s) for i, s in enumerate(specs)])
    sqs = aws.client("sqs")
    for start in range(0, N, 10):
        sqs.send_message_batch(QueueUrl=queue, Entries=[
            {"Id": str(i), "MessageBody": json.dumps({"job_id": job.job_id, "item_id": i, "spec": specs[i]})}
            for i in range(start, min(N, start + 10))])
    poller = cloud.add_sqs_source(queue, name, batch_size=10, concurrency=1)
    try:
        def final() -> jobs.Job | None:
            current = jobs.get_job(job.job_id)
            return current if current.is_final else None

        done: jobs.Job = wait_for(final, timeout=90, interval=0.3, what="the job to finish after the kills")
    finally:
        poller.stop()
        cloud.sqs_pollers.remove(poller)
    assert kills == {"left": 0, "half_done": 10}
    assert poller.stats.function_errors == 2
    # Every item once: the half that was recorded before each kill was not counted again.
    assert (done.status, done.processed, done.succeeded, done.failed) == ("completed", N, N, 0)
    assert all(i.status == "succeeded" and i.output_key for i in jobs.iter_items(job.job_id))
