"""Local cloud throughput: SQS → event source → no-op handler → one DynamoDB update per item.

10,000 messages are queued first, then the poller drains them. Prints JSON; the last line is
one object with ``items_per_s``.

    .venv/bin/python bench/local_cloud.py [--items 10000] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from posterflow import aws, config
from posterflow_local.cloud import CloudOptions, LocalCloud


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=4, help="poller threads (function instances)")
    args = ap.parse_args()

    out = Path(tempfile.mkdtemp(prefix="pf-bench-"))
    with LocalCloud(CloudOptions(aws_port=0, api_port=0, ws_port=0, out_dir=out, function_logs=out / "logs",
                                 event_sources=False)) as cloud:
        sqs, ddb = aws.client("sqs"), aws.client("dynamodb")
        url = sqs.create_queue(QueueName="bench-noop", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
        t0 = time.perf_counter()
        for start in range(0, args.items, 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "MessageBody": json.dumps({"n": start + i})} for i in range(min(10, args.items - start))
            ])
        enqueue_s = time.perf_counter() - t0
        table = config.table()
        done = threading.Semaphore(0)

        def noop(event: dict[str, Any], context: Any) -> dict[str, Any]:
            for record in event["Records"]:
                n = json.loads(record["body"])["n"]
                ddb.update_item(
                    TableName=table, Key={"PK": {"S": "BENCH"}, "SK": {"S": f"ITEM#{n:06d}"}},
                    UpdateExpression="ADD #c :one", ExpressionAttributeNames={"#c": "count"},
                    ExpressionAttributeValues={":one": {"N": "1"}},
                )
                done.release()
            return {"batchItemFailures": []}

        cloud.register_function("bench-noop", noop, concurrency=args.concurrency)
        t1 = time.perf_counter()
        cloud.add_sqs_source(url, "bench-noop", batch_size=10, concurrency=args.concurrency)
        for _ in range(args.items):
            done.acquire()
        elapsed = time.perf_counter() - t1
        left = int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"]["ApproximateNumberOfMessages"])
    result = {
        "benchmark": "local_cloud",
        "items": args.items,
        "concurrency": args.concurrency,
        "enqueue_s": round(enqueue_s, 2),
        "drain_s": round(elapsed, 2),
        "left_in_queue": left,
        "items_per_s": round(args.items / elapsed, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
