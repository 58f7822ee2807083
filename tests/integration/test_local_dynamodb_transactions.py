"""DynamoDB transactions on the local cloud are atomic: all or nothing, whatever else runs."""

from __future__ import annotations

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
