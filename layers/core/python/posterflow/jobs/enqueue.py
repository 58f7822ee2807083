"""Turning a job's items into work messages: one SQS message per item, sent in batches of 10,
on the queue of the job's priority lane (:mod:`posterflow.jobs.lanes`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from posterflow import aws, config, jobs, tenancy
from posterflow.jobs import lanes
from posterflow.resources import stack_spec


def _chunks(seq: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for x in seq:
        chunk.append(x)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def send_messages(queue_key: str, bodies: Iterable[dict[str, Any]]) -> int:
    """SendMessageBatch in tens; entries SQS refuses are retried once, then raise."""
    sqs, url, sent = aws.client("sqs"), config.queue_url(queue_key), 0
    for chunk in _chunks(bodies, 10):
        entries = [{"Id": str(i), "MessageBody": json.dumps(body, separators=(",", ":"))}
                   for i, body in enumerate(chunk)]
        resp = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        failed = {f["Id"] for f in resp.get("Failed", [])}
        if failed:
            retry = [e for e in entries if e["Id"] in failed]
            resp = sqs.send_message_batch(QueueUrl=url, Entries=retry)
            if resp.get("Failed"):
                raise RuntimeError(f"SQS refused {len(resp['Failed'])} messages: {resp['Failed'][0].get('Message')}")
        sent += len(chunk)
    return sent


def submit_posters(job_id: str, specs: Sequence[tuple[int, dict[str, Any], str | None]], *,
                   priority: int | None = None) -> int:
    """Write the items, then queue one render message per item (items first, so a fast worker
    always finds its item) on the render queue of the job's lane (its ``priority``)."""
    jobs.put_items(job_id, (jobs.NewItem(item_id=item_id, entity_id=entity_id, input=spec)
                            for item_id, spec, entity_id in specs))
    return send_messages(lanes.queue_key("render", priority),
                         ({"job_id": job_id, "item_id": item_id, "spec": spec} for item_id, spec, _ in specs))


def submit_manifest(job_id: str, specs: Sequence[tuple[int, dict[str, Any], str | None]]) -> str:
    """Store the items as a JSON-lines manifest and ask the splitter to fan it out (to the
    lane of the job, which it reads from the job: :func:`posterflow.jobs.lanes.queue_key`)."""
    key = tenancy.scoped_key(stack_spec().bucket.manifests_prefix, tenancy.current(), f"{job_id}.jsonl")
    body = "".join(json.dumps({"item_id": i, "entity_id": e, "spec": spec}, separators=(",", ":")) + "\n"
                   for i, spec, e in specs).encode()
    aws.client("s3").put_object(Bucket=config.bucket(), Key=key, Body=body, ContentType="application/x-ndjson")
    send_messages("split", [{"manifest": {"job_id": job_id, "bucket": config.bucket(), "key": key}}])
    return key
