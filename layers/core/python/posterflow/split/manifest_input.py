"""Manifests: JSON lines of ``{"item_id", "entity_id", "spec"}`` the API writes for a batch too
large to queue in one request (``posterflow.jobs.enqueue``); one poster item per line."""

from __future__ import annotations

import json
from typing import Any

from posterflow import aws, jobs
from posterflow.split.base import ChunkWriter, Items


def split_manifest(state: dict[str, Any], write: ChunkWriter) -> bool:
    offset = int(state["cursor"] or 0)
    args: dict[str, Any] = {"Bucket": state["bucket"], "Key": state["key"]}
    if offset:
        args["Range"] = f"bytes={offset}-"
    body = aws.client("s3").get_object(**args)["Body"]
    position = {"offset": offset}

    def items() -> Items:
        for raw in body.iter_lines(keepends=True):
            position["offset"] += len(raw)
            if not raw.strip():
                continue
            line = json.loads(raw)
            yield (jobs.NewItem(item_id=line["item_id"], entity_id=line.get("entity_id"), input=line["spec"]),
                   {"job_id": state["job_id"], "item_id": line["item_id"], "spec": line["spec"]})

    return write(items(), "render", lambda _: position["offset"])
