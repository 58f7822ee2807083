"""WebSocket connections and their job subscriptions in the jobs table.

``CONN#<connection_id>/META`` is the connection and its subscription to the job it connected
for; ``CONN#<connection_id>/SUB#<job_id>`` is each job added later with ``subscribe``. Both
carry the GSI keys ``GSI1PK = CONNS#<job_id>``, ``GSI1SK = <connection_id>``, so the stream
handler finds a job's connections with one query, and both expire by TTL (API Gateway closes
a connection after two hours at most; ``$disconnect`` removes them earlier).

Each subscription stores the job's state at subscribe time (``snapshot``) and its order key
(``floor_round``, ``floor_processed``). The stream lags the table, so frames built from
older stream records must not reach a client that already saw a newer snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from posterflow.jobs import _ddb as d

CONN_PREFIX = "CONN#"
SUB_PREFIX = "SUB#"
GSI_PREFIX = "CONNS#"
# API Gateway's maximum connection duration is two hours; a margin covers clock skew.
CONNECTION_TTL_S = 2 * 3600 + 600
MAX_SUBSCRIPTIONS = 50


@dataclass(frozen=True)
class Subscription:
    connection_id: str
    job_id: str
    floor: tuple[int, int]
    created_at: float
    greeted: bool = True


def conn_pk(connection_id: str) -> str:
    return f"{CONN_PREFIX}{connection_id}"


def _record(connection_id: str, job_id: str, sk: str, snapshot: Mapping[str, Any], now: float) -> dict[str, Any]:
    t = d.spec()
    return {
        t.partition_key: conn_pk(connection_id),
        t.sort_key: sk,
        t.gsi_partition_key: f"{GSI_PREFIX}{job_id}",
        t.gsi_sort_key: connection_id,
        t.ttl_attribute: int(now) + CONNECTION_TTL_S,
        "entity": "connection" if sk == d.META else "subscription",
        "connection_id": connection_id,
        "job_id": job_id,
        "created_at": now,
        "floor_round": int(snapshot.get("round") or 0),
        "floor_processed": int(snapshot.get("processed") or 0),
        "snapshot": dict(snapshot),
        # A connection made by $connect is greeted (``connected``) by the stream handler when
        # its insert comes through the stream; frames before that would arrive before the
        # greeting. A ``subscribe`` is answered at once, so it starts out greeted.
        "greeted": sk != d.META,
    }


def add_connection(connection_id: str, job_id: str, snapshot: Mapping[str, Any]) -> None:
    """The connection and its first job (``$connect``)."""
    record = _record(connection_id, job_id, d.META, snapshot, time.time())
    d.ddb().put_item(TableName=d.table(), Item=d.to_item(record))


def add_subscription(connection_id: str, job_id: str, snapshot: Mapping[str, Any]) -> bool:
    """Another job for a live connection; False if the connection is unknown (gone)."""
    t = d.spec()
    record = _record(connection_id, job_id, f"{SUB_PREFIX}{job_id}", snapshot, time.time())
    # Only while the connection exists: a subscribe racing $disconnect must not leave an
    # orphan that the stream handler would keep posting to until TTL.
    try:
        d.transact([
            {"ConditionCheck": {"TableName": d.table(), "Key": d.key(conn_pk(connection_id), d.META),
                                "ConditionExpression": "attribute_exists(#pk)",
                                "ExpressionAttributeNames": {"#pk": t.partition_key}}},
            {"Put": {"TableName": d.table(), "Item": d.to_item(record)}},
        ])
    except ClientError as exc:
        if "ConditionalCheckFailed" in d.cancellation_codes(exc):
            return False
        raise
    return True


def mark_greeted(connection_id: str) -> None:
    t = d.spec()
    try:
        d.ddb().update_item(
            TableName=d.table(), Key=d.key(conn_pk(connection_id), d.META),
            UpdateExpression="SET greeted = :t", ConditionExpression="attribute_exists(#pk)",
            ExpressionAttributeNames={"#pk": t.partition_key}, ExpressionAttributeValues={":t": {"BOOL": True}},
        )
    except ClientError as exc:
        # Gone already ($disconnect won the race): nothing to mark.
        if not d.is_conditional_failure(exc):
            raise


def subscribed_jobs(connection_id: str) -> list[str]:
    t = d.spec()
    resp = d.ddb().query(
        TableName=d.table(),
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": t.partition_key},
        ExpressionAttributeValues={":pk": {"S": conn_pk(connection_id)}},
        ConsistentRead=True,
    )
    return [str(d.from_item(raw)["job_id"]) for raw in resp.get("Items", [])]


def remove_connection(connection_id: str) -> int:
    """Delete the connection and all its subscriptions; how many records went."""
    t = d.spec()
    resp = d.ddb().query(
        TableName=d.table(),
        KeyConditionExpression="#pk = :pk",
        ProjectionExpression="#pk, #sk",
        ExpressionAttributeNames={"#pk": t.partition_key, "#sk": t.sort_key},
        ExpressionAttributeValues={":pk": {"S": conn_pk(connection_id)}},
        ConsistentRead=True,
    )
    keys = [raw for raw in resp.get("Items", [])]
    for raw in keys:
        d.ddb().delete_item(TableName=d.table(), Key=raw)
    return len(keys)


def subscriptions_for(job_id: str) -> list[Subscription]:
    """Every live subscription to a job (GSI query; eventually consistent, as a subscription
    made a moment ago may be missed once, and it got its snapshot when it subscribed)."""
    t = d.spec()
    out: list[Subscription] = []
    kwargs: dict[str, Any] = {}
    now = time.time()
    while True:
        resp = d.ddb().query(
            TableName=d.table(),
            IndexName=t.gsi_name,
            KeyConditionExpression="#g = :g",
            ExpressionAttributeNames={"#g": t.gsi_partition_key},
            ExpressionAttributeValues={":g": {"S": f"{GSI_PREFIX}{job_id}"}},
            **kwargs,
        )
        for raw in resp.get("Items", []):
            rec = d.from_item(raw)
            # TTL deletion runs late; an expired record is treated as gone already.
            if int(rec.get(t.ttl_attribute, now + 1)) < now:
                continue
            out.append(Subscription(
                connection_id=str(rec["connection_id"]),
                job_id=job_id,
                floor=(int(rec.get("floor_round", 0)), int(rec.get("floor_processed", 0))),
                created_at=float(rec.get("created_at", 0.0)),
                greeted=bool(rec.get("greeted", True)),
            ))
        if "LastEvaluatedKey" not in resp:
            return out
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
