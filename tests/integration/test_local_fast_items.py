"""Item sizing on the embedded AWS walks the item instead of rebuilding it, and gives moto's
numbers: the same sizes for every attribute type, and the 400 KB limit refused at the same
point on PutItem, BatchWriteItem and UpdateItem. SQS queue attributes are unchanged by the
cached name conversion."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from posterflow import aws
from posterflow import resources as r

ATTRIBUTE_VALUES: list[dict[str, Any]] = [
    {"S": "héllo wörld"},
    {"S": ""},
    {"N": "12345.678"},
    {"N": "-0.5"},
    {"B": b"\x00\x01binary"},
    {"BOOL": True},
    {"BOOL": False},
    {"NULL": True},
    {"SS": ["a", "bé", "ccc"]},
    {"NS": ["1", "22", "3.5"]},
    {"BS": [b"x", b"yz"]},
    {"L": [{"S": "a"}, {"N": "1"}, {"M": {"k": {"S": "v"}}}, {"L": []}]},
    {"M": {"title": {"S": "What our customers say"}, "rating": {"N": "5"},
           "nested": {"M": {"deep": {"L": [{"BOOL": True}, {"NULL": True}, {"SS": ["p", "q"]}]}}}}},
    {"M": {}},
]


@pytest.fixture
def moto_sizing() -> Iterator[None]:
    """moto's own sizing for the duration of a test, then the fast path again."""
    from posterflow_local.patches import dynamodb_item_sizes as fast_items

    with fast_items.PATCH.removed():
        yield


def test_sizes_match_moto_for_every_attribute_type() -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    from posterflow_local.patches import dynamodb_item_sizes as fast_items

    for value in ATTRIBUTE_VALUES:
        assert fast_items.value_size(DynamoType(value)) == fast_items._original_size(DynamoType(value)), value
    attrs = {f"a{i}": value for i, value in enumerate(ATTRIBUTE_VALUES)}
    item = Item(DynamoType({"S": "pk"}), DynamoType({"S": "sk"}), attrs)
    assert isinstance(item.attrs, type(Item(DynamoType({"S": "p"}), None, {}).attrs))
    expected = sum(len(k) for k in attrs) + sum(fast_items._original_size(DynamoType(v)) for v in attrs.values())
    assert fast_items.attrs_size(item.attrs) == expected
    assert item.attrs["a12"].value["nested"].value["deep"].value[2].type == "SS"


def _limit_outcomes(table: str) -> list[str]:
    """What the embedded DynamoDB answers around the item size limit, write by write."""
    ddb = aws.client("dynamodb")
    outcomes: list[str] = []

    def attempt(label: str, call: Any, **kwargs: Any) -> None:
        try:
            call(**kwargs)
            outcomes.append(f"{label}: ok")
        except ClientError as exc:
            outcomes.append(f"{label}: {exc.response['Error']['Code']} {exc.response['Error']['Message']}")

    key = {"PK": {"S": "FASTITEMS#1"}, "SK": {"S": "ITEM#1"}}
    for label, size in (("fits", 300_000), ("just over", 405_100), ("far over", 420_000)):
        attempt(f"put {label}", ddb.put_item, TableName=table, Item={**key, "blob": {"S": "x" * size}})
    attempt("batch over", ddb.batch_write_item, RequestItems={table: [
        {"PutRequest": {"Item": {**key, "SK": {"S": "ITEM#2"}, "blob": {"S": "y" * 406_000}}}}]})
    attempt("update within", ddb.update_item, TableName=table, Key=key,
            UpdateExpression="SET more = :m", ExpressionAttributeValues={":m": {"S": "z" * 90_000}})
    attempt("update over", ddb.update_item, TableName=table, Key=key,
            UpdateExpression="SET extra = :m", ExpressionAttributeValues={":m": {"S": "z" * 20_000}})
    stored = ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item", {})
    outcomes.append(f"stored attributes: {sorted(stored)}")
    ddb.delete_item(TableName=table, Key=key)
    return outcomes


def test_the_size_limit_is_refused_where_moto_refuses_it(aws_stack: r.ResourceRefs, moto_sizing: None) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    from posterflow_local.patches import dynamodb_item_sizes as fast_items

    expected = _limit_outcomes(aws_stack.table)  # moto's sizing (the fixture uninstalled ours)
    assert DynamoType.size is fast_items._original_size
    fast_items.PATCH.install()
    assert DynamoType.size is fast_items._size  # the fast path is what runs now
    assert _limit_outcomes(aws_stack.table) == expected
    assert any(o.startswith("put just over: ValidationException") for o in expected)
    assert "put fits: ok" in expected and "update within: ok" in expected


def test_queue_attributes_are_unchanged(aws_stack: r.ResourceRefs, moto_sizing: None) -> None:
    from posterflow_local.patches import dynamodb_item_sizes as fast_items

    sqs = aws.client("sqs")
    url = aws_stack.queue_urls["render"]
    before = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    fast_items.PATCH.install()
    after = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    volatile = {"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed", "LastModifiedTimestamp"}

    def stable(attributes: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in attributes.items() if k not in volatile}

    assert stable(after) == stable(before)
    assert "RedrivePolicy" in after and after["VisibilityTimeout"]
