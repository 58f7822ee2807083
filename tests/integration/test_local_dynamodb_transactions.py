"""DynamoDB transactions on the local cloud are atomic: all or nothing, whatever else runs; and
they answer what moto's own transactions answer."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from posterflow import aws, config
from posterflow import resources as r


def _key(pk: str, sk: str) -> dict[str, Any]:
    t = r.stack_spec().table
    return {t.partition_key: {"S": pk}, t.sort_key: {"S": sk}}


def test_a_cancelled_transaction_writes_nothing(aws_stack: r.ResourceRefs) -> None:
    ddb = aws.client("dynamodb")
    table = config.table()
    ddb.put_item(TableName=table, Item={**_key("T#moto", "A"), "n": {"N": "1"}})
    with pytest.raises(ClientError) as err:
        ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": table, "Key": _key("T#moto", "A"), "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Update": {"TableName": table, "Key": _key("T#moto", "B"), "UpdateExpression": "ADD n :one",
                        "ConditionExpression": "attribute_exists(n)",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        ])
    reasons = [x["Code"] for x in err.value.response["CancellationReasons"]]
    assert reasons == ["None", "ConditionalCheckFailed"]
    assert ddb.get_item(TableName=table, Key=_key("T#moto", "A"))["Item"]["n"] == {"N": "1"}
    assert "Item" not in ddb.get_item(TableName=table, Key=_key("T#moto", "B"))


def test_a_failed_write_rolls_back_the_writes_before_it(aws_stack: r.ResourceRefs) -> None:
    ddb = aws.client("dynamodb")
    table = config.table()
    ddb.put_item(TableName=table, Item={**_key("T#moto2", "A"), "n": {"N": "1"}, "s": {"S": "text"}})
    with pytest.raises(ClientError):
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": {**_key("T#moto2", "NEW"), "n": {"N": "5"}}}},
            {"Update": {"TableName": table, "Key": _key("T#moto2", "A"), "UpdateExpression": "ADD s :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        ])
    assert "Item" not in ddb.get_item(TableName=table, Key=_key("T#moto2", "NEW"))
    assert ddb.get_item(TableName=table, Key=_key("T#moto2", "A"))["Item"]["s"] == {"S": "text"}


# ---- the same transactions with the patch and with moto's own code -----------------------------

def _outcome(call: Callable[[], Any]) -> Any:
    try:
        call()
        return "ok"
    except ClientError as exc:
        error = exc.response["Error"]
        return error["Code"], error["Message"], exc.response.get("CancellationReasons")


def _scratch_table() -> str:
    """A table of the project's key shape for moto's own transaction path: on a failure moto
    rolls back by putting deep copies of every table the transaction names in place of the
    originals, which on the project's own table would swap out the DynamoDB stream shard the
    local cloud's stream poller reads (its progress frames would stop for the session)."""
    t = r.stack_spec().table
    name = f"t-tx-{uuid.uuid4().hex[:10]}"
    aws.client("dynamodb").create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": t.partition_key, "AttributeType": "S"},
                              {"AttributeName": t.sort_key, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": t.partition_key, "KeyType": "HASH"},
                   {"AttributeName": t.sort_key, "KeyType": "RANGE"}])
    return name


def _transactions(pk: str, table: str) -> list[Any]:
    """Transactions on partition ``pk`` of ``table``, and what each leaves in it (``pk`` itself
    left out)."""
    ddb = aws.client("dynamodb")
    t = r.stack_spec().table

    def items() -> list[dict[str, Any]]:
        found = ddb.query(TableName=table, KeyConditionExpression="#pk = :pk", ConsistentRead=True,
                          ExpressionAttributeNames={"#pk": t.partition_key},
                          ExpressionAttributeValues={":pk": {"S": pk}})["Items"]
        return [{k: v for k, v in item.items() if k != t.partition_key} for item in found]

    def update(sk: str, expression: str, values: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"Update": {"TableName": table, "Key": _key(pk, sk), "UpdateExpression": expression,
                           "ExpressionAttributeValues": values, **extra}}

    def check(sk: str, condition: str) -> dict[str, Any]:
        return {"ConditionCheck": {"TableName": table, "Key": _key(pk, sk), "ConditionExpression": condition}}

    one = {":one": {"N": "1"}}
    runs: list[list[dict[str, Any]]] = [
        [  # success: every kind of write, and a condition check
            {"Put": {"TableName": table, "Item": {**_key(pk, "A"), "n": {"N": "1"}, "s": {"S": "text"}},
                     "ConditionExpression": "attribute_not_exists(#sk)",
                     "ExpressionAttributeNames": {"#sk": t.sort_key}}},
            {"Put": {"TableName": table, "Item": {**_key(pk, "GONE"), "n": {"N": "9"}}}},
            {"Put": {"TableName": table, "Item": {**_key(pk, "C"), "n": {"N": "3"}}}},
            update("B", "ADD n :one SET tags = :tags", {**one, ":tags": {"SS": ["x"]}}),
        ],
        [
            update("A", "ADD n :one", one, ConditionExpression="n = :one"),
            {"Delete": {"TableName": table, "Key": _key(pk, "GONE")}},
            check("B", "attribute_exists(n)"),
        ],
        [  # a condition fails: CancellationReasons, with the old item where asked for
            update("A", "ADD n :one", one),
            update("B", "ADD n :one", {**one, ":zero": {"N": "0"}}, ConditionExpression="n = :zero",
                   ReturnValuesOnConditionCheckFailure="ALL_OLD"),
            {"Delete": {"TableName": table, "Key": _key(pk, "C"), "ConditionExpression": "attribute_not_exists(n)"}},
            check("NONE", "attribute_exists(n)"),
        ],
        [  # a write fails after others: nothing is written
            {"Put": {"TableName": table, "Item": {**_key(pk, "NEW"), "n": {"N": "5"}}}},
            update("B", "ADD n :one", one),
            update("A", "ADD s :one", one),
        ],
        [  # the same item twice
            update("A", "ADD n :one", one),
            update("A", "SET s = :s", {":s": {"S": "again"}}),
        ],
    ]
    seen: list[Any] = []
    for run in runs:
        seen.append(_outcome(lambda run=run: ddb.transact_write_items(TransactItems=run)))  # type: ignore[misc]
        seen.append(items())
    # The two runs differ only in their partition, which the old items carry back.
    return list(json.loads(json.dumps(seen).replace(pk, "<pk>")))


@pytest.fixture
def moto_transactions(cloud: object) -> Iterator[None]:
    """moto's own transactions (and request handling) for a test, then the patch again."""
    from posterflow_local.patches import dynamodb_transactions

    with dynamodb_transactions.PATCH.removed():
        yield


def test_same_results_as_moto(aws_stack: r.ResourceRefs, request: pytest.FixtureRequest) -> None:
    from moto.dynamodb.models import DynamoDBBackend

    from posterflow_local.patches import dynamodb_transactions

    assert DynamoDBBackend.transact_write_items is dynamodb_transactions._transact_write_items
    table = _scratch_table()
    patched = _transactions("T#diff-patched", table)
    request.getfixturevalue("moto_transactions")
    assert DynamoDBBackend.transact_write_items is dynamodb_transactions._original_transact
    reference = _transactions("T#diff-moto", table)
    assert patched == reference
    outcomes = reference[::2]
    assert outcomes[:2] == ["ok", "ok"]
    assert [x["Code"] for x in outcomes[2][2]] == ["None", "ConditionalCheckFailed", "ConditionalCheckFailed",
                                                   "ConditionalCheckFailed"]
    assert outcomes[2][2][1]["Item"]["n"] == {"N": "1"}  # ALL_OLD
    assert outcomes[3][0] == outcomes[4][0] == "ValidationException"
    assert reference[5] == reference[7] == reference[9] == reference[3]  # the failed ones changed nothing
