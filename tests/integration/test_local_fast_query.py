"""Queries on the embedded AWS read only what they need and answer exactly what moto's full
table walk answers: same items, same order, same pages, on the table and on the index."""

from __future__ import annotations

from typing import Any

import pytest

from posterflow import aws
from posterflow import resources as r


def _fill(table: str) -> None:
    ddb = aws.client("dynamodb")
    for part in ("FASTQ#a", "FASTQ#b", "FASTQ#c"):
        for i in (5, 1, 10, 2, 30):  # written out of order
            ddb.put_item(TableName=table, Item={
                "PK": {"S": part}, "SK": {"S": f"ITEM#{i:03d}"}, "n": {"N": str(i)},
                "GSI1PK": {"S": "FASTQ#index"}, "GSI1SK": {"S": f"{i % 3}"},
            })


def _queries(table: str) -> list[dict[str, Any]]:
    ddb = aws.client("dynamodb")
    answers: list[dict[str, Any]] = []
    for forward in (True, False):
        start: dict[str, Any] | None = None
        while True:
            kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
            page = ddb.query(TableName=table, KeyConditionExpression="PK = :pk AND begins_with(SK, :p)",
                             ExpressionAttributeValues={":pk": {"S": "FASTQ#b"}, ":p": {"S": "ITEM#"}},
                             ScanIndexForward=forward, Limit=2, **kwargs)
            answers.append({k: page.get(k) for k in ("Items", "Count", "LastEvaluatedKey")})
            start = page.get("LastEvaluatedKey")
            if not start:
                break
    index = ddb.query(TableName=table, IndexName="GSI1", KeyConditionExpression="GSI1PK = :pk",
                      ExpressionAttributeValues={":pk": {"S": "FASTQ#index"}})
    answers.append({"Items": index["Items"], "Count": index["Count"]})
    empty = ddb.query(TableName=table, KeyConditionExpression="PK = :pk",
                      ExpressionAttributeValues={":pk": {"S": "FASTQ#none"}})
    answers.append({"Items": empty["Items"], "Count": empty["Count"]})
    return answers


def test_queries_match_the_full_table_walk(aws_stack: r.ResourceRefs, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models.table import Table

    from posterflow_local.patches import dynamodb_query as fast_query

    _fill(aws_stack.table)
    fast = _queries(aws_stack.table)
    assert Table.all_items is fast_query._all_items  # the fast path is what ran
    first_pages = [a for a in fast[:-2] if a["Items"]]
    ascending = [int(x["n"]["N"]) for a in first_pages[: len(first_pages) // 2] for x in a["Items"]]
    assert ascending == [1, 2, 5, 10, 30]
    assert fast[-2]["Count"] >= 15 and fast[-1] == {"Items": [], "Count": 0}

    monkeypatch.setattr(Table, "all_items", fast_query._original_all_items)
    assert _queries(aws_stack.table) == fast
