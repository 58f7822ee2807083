"""One page of a job's records of one kind (items, logs), optionally filtered on one attribute.

A filtered query can answer fewer records than asked for (or none) per call, so a page is read
on until it is full or the partition's records of that kind end. The cursor is the last sort
key read, scoped to the listing (job, kind, order, filter), so it is refused by any other.
"""

from __future__ import annotations

from typing import Any

from posterflow.jobs import _ddb as d
from posterflow.jobs._expr import Expr


def job_records(job_id: str, prefix: str, *, scope: str, limit: int, cursor: str | None,
                where: tuple[str, str] | None = None, newest_first: bool = False,
                consistent: bool = False) -> tuple[list[dict[str, Any]], str | None]:
    """Raw records of ``job_id`` whose sort key starts with ``prefix``, and the next cursor
    (``None`` at the end). ``where`` is ``(attribute, value)``: keep only records with it."""
    t = d.spec()
    start_sk = d.decode_cursor(cursor, scope) if cursor else None
    found: list[dict[str, Any]] = []
    last_sk: str | None = None
    while len(found) < limit:
        e = Expr()
        condition = (f"{e.name(t.partition_key)} = {e.value(d.job_pk(job_id))} AND "
                     f"begins_with({e.name(t.sort_key)}, {e.value(prefix)})")
        kwargs: dict[str, Any] = {}
        if where is not None:
            kwargs["FilterExpression"] = f"{e.name(where[0])} = {e.value(where[1])}"
        if start_sk is not None:
            kwargs["ExclusiveStartKey"] = d.key(d.job_pk(job_id), start_sk)
        resp = d.ddb().query(TableName=d.table(), KeyConditionExpression=condition,
                             ExpressionAttributeNames=e.names, ExpressionAttributeValues=e.values,
                             ScanIndexForward=not newest_first, Limit=limit - len(found),
                             ConsistentRead=consistent, **kwargs)
        found.extend(resp.get("Items", []))
        lek = resp.get("LastEvaluatedKey")
        if lek is None:
            return found, None
        start_sk = last_sk = lek[t.sort_key]["S"]
    return found, (None if last_sk is None else d.encode_cursor(scope, last_sk))
