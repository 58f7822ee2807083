"""Update expressions on the embedded AWS give what moto's own parser and validator give:
the same items after every update, the same errors for bad ones."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from posterflow import aws
from posterflow import resources as r

# (update expression, names, values); each runs on the item the previous ones left.
UPDATES: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    ("SET #s = :s, #n = :n, #m = :m, #l = :l ADD #c :one", {"#s": "status", "#n": "n", "#m": "extra", "#l": "list",
                                                          "#c": "count"},
     {":s": {"S": "pending"}, ":n": {"N": "1.50"}, ":m": {"M": {"a": {"S": "x"}}}, ":l": {"L": [{"N": "1"}]},
      ":one": {"N": "1"}}),
    ("SET #m.#k = :v, #n = #n + :d REMOVE #l[0] ADD #c :one", {"#m": "extra", "#k": "b", "#n": "n", "#l": "list",
                                                                "#c": "count"},
     {":v": {"BOOL": True}, ":d": {"N": "2"}, ":one": {"N": "1"}}),
    ("SET #t = if_not_exists(#t, :now), #l2 = list_append(if_not_exists(#l2, :empty), :more)",
     {"#t": "created", "#l2": "log"}, {":now": {"S": "2026-11-22"}, ":empty": {"L": []}, ":more": {"L": [{"S": "e"}]}}),
    ("ADD #ss :set DELETE #ss2 :gone", {"#ss": "tags", "#ss2": "tags"}, {":set": {"SS": ["a", "b"]},  # overlap
                                                                         ":gone": {"SS": ["a"]}}),
    ("ADD #ss :set", {"#ss": "tags"}, {":set": {"SS": ["c"]}}),
    ("DELETE #ss :gone", {"#ss": "tags"}, {":gone": {"SS": ["c"]}}),
    # bad ones: each must fail the same way
    ("SET #k = :v", {"#k": "PK"}, {":v": {"S": "other"}}),
    ("SET #a = :v, #a = :w", {"#a": "dup"}, {":v": {"S": "1"}, ":w": {"S": "2"}}),
    ("SET #m.#x.#y = :v", {"#m": "extra", "#x": "missing", "#y": "deep"}, {":v": {"S": "1"}}),
    ("ADD #s :one", {"#s": "status"}, {":one": {"N": "1"}}),
    ("SET #n = #n + :s", {"#n": "n"}, {":s": {"S": "text"}}),
    ("SET #a = :v SET #b = :v", {"#a": "a", "#b": "b"}, {":v": {"S": "1"}}),
    ("SET #a = :undefined", {"#a": "a"}, {":v": {"S": "1"}}),
    ("SET #a = :v", {"#a": "a", "#unused": "u"}, {":v": {"S": "1"}}),
    ("SET #e = :empty", {"#e": "SK"}, {":empty": {"S": ""}}),
]


def _run(table: str, pk: str) -> list[Any]:
    ddb = aws.client("dynamodb")
    key = {"PK": {"S": pk}, "SK": {"S": "ITEM"}}
    ddb.put_item(TableName=table, Item={**key, "count": {"N": "0"}})
    seen: list[Any] = []
    for expression, names, values in UPDATES:
        try:
            got = ddb.update_item(TableName=table, Key=key, UpdateExpression=expression,
                                  ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                                  ReturnValues="ALL_NEW")["Attributes"]
            seen.append({k: v for k, v in got.items() if k != "PK"})
        except ClientError as exc:
            seen.append((exc.response["Error"]["Code"], exc.response["Error"]["Message"]))
    return seen


@pytest.fixture
def moto_own(cloud: object) -> Iterator[None]:
    from posterflow_local.patches import dynamodb_update_expressions as fast_expressions

    with fast_expressions.PATCH.removed():
        yield


def test_fast_path_is_installed(cloud: object) -> None:
    from moto.dynamodb import models

    from posterflow_local.patches import dynamodb_update_expressions as fast_expressions

    assert models.UpdateExpressionParser is fast_expressions._Parser


def test_same_items_and_errors_as_moto(aws_stack: r.ResourceRefs, request: pytest.FixtureRequest) -> None:
    fast = _run(aws_stack.table, "FASTEXPR#fast")
    cached = _run(aws_stack.table, "FASTEXPR#again")  # every expression's tree from the cache now
    request.getfixturevalue("moto_own")
    reference = _run(aws_stack.table, "FASTEXPR#moto")
    assert fast == reference
    assert cached == reference
    errors = [x for x in fast if isinstance(x, tuple)]
    assert len(errors) == 10 and all(code == "ValidationException" for code, _ in errors)
