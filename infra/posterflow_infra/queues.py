"""SQS work queues and their dead-letter queues, one pair per queue in the spec (the render and
crop work: one pair per priority lane, posterflow.jobs.lanes)."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from posterflow import resources as r


def construct_id(key: str) -> str:
    """``render`` → ``Render``, ``render_urgent`` → ``RenderUrgent`` (construct ids, so logical ids)."""
    return "".join(part.title() for part in key.split("_"))


@dataclass(frozen=True)
class QueuePair:
    spec: r.QueueSpec
    queue: sqs.Queue
    dlq: sqs.Queue


class WorkQueues(Construct):
    """Encrypted (SSE-SQS), TLS-only queues with redrive to a DLQ after ``max_receive_count``.

    SSE-SQS rather than a customer key: S3 event notifications cannot publish to a queue
    encrypted with the AWS-managed SQS KMS key, and a CMK would add a key policy per queue
    for no gain in this threat model.
    """

    def __init__(self, scope: Construct, cid: str, *, spec: r.StackSpec, dlq_visibility: Duration) -> None:
        super().__init__(scope, cid)
        self.pairs: dict[str, QueuePair] = {}
        for q in spec.queues:
            dlq = sqs.Queue(
                self, f"{construct_id(q.key)}Dlq",
                queue_name=q.dlq_name,
                retention_period=Duration.seconds(q.dlq_retention_s),
                # The dlq function consumes DLQs; Lambda requires visibility >= its timeout.
                visibility_timeout=dlq_visibility,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
            )
            queue = sqs.Queue(
                self, f"{construct_id(q.key)}Queue",
                queue_name=q.name,
                visibility_timeout=Duration.seconds(q.visibility_timeout_s),
                retention_period=Duration.seconds(q.retention_s),
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=q.max_receive_count),
            )
            self.pairs[q.key] = QueuePair(spec=q, queue=queue, dlq=dlq)

    def queue(self, key: str) -> sqs.Queue:
        return self.pairs[key].queue

    def queue_urls(self) -> dict[str, str]:
        """Keys as the local cloud names them: ``<key>`` and ``<key>_dlq``."""
        urls: dict[str, str] = {}
        for key, pair in self.pairs.items():
            urls[key] = pair.queue.queue_url
            urls[f"{key}_dlq"] = pair.dlq.queue_url
        return urls
