"""The embedded AWS's direct JSON for DynamoDB and DynamoDB Streams responses is the document
moto's shape walk would have written, for every kind of attribute value and result."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from posterflow import aws
from posterflow import resources as r


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    from posterflow_local.patches import dynamodb_serialize as fast_serialize

    monkeypatch.setenv("POSTERFLOW_CHECK_FAST_SERIALIZE", "1")
    before = len(fast_serialize.mismatches)
    found: list[str] = []
    yield found
    found.extend(fast_serialize.mismatches[before:])
    assert fast_serialize.mismatches[before:] == []


ITEM = {
    "PK": {"S": "FASTSER#1"}, "SK": {"S": "A"},
    "s": {"S": "ünïcødé \"quoted\" \n"}, "n": {"N": "12.5000"}, "big": {"N": "123456789012345678901234567890"},
    "b": {"B": b"\x00\xffbinary"}, "bs": {"BS": [b"\x01", b"\x02"]}, "ns": {"NS": ["1", "2.5"]},
    "ss": {"SS": ["a", "b"]}, "t": {"BOOL": True}, "nil": {"NULL": True},
    "m": {"M": {"nested": {"L": [{"S": "x"}, {"N": "1"}, {"M": {}}, {"L": []}]}}}, "empty": {"S": ""},
}


def test_item_operations_match_moto(checked: list[str], aws_stack: r.ResourceRefs) -> None:
    ddb, table = aws.client("dynamodb"), aws_stack.table
    put = ddb.put_item(TableName=table, Item=ITEM, ReturnConsumedCapacity="TOTAL")
    assert put["ConsumedCapacity"]["TableName"] == table
    got = ddb.get_item(TableName=table, Key={"PK": ITEM["PK"], "SK": ITEM["SK"]}, ConsistentRead=True)["Item"]
    assert got == ITEM
    assert "Item" not in ddb.get_item(TableName=table, Key={"PK": ITEM["PK"], "SK": {"S": "missing"}})
    updated = ddb.update_item(TableName=table, Key={"PK": ITEM["PK"], "SK": ITEM["SK"]},
                              UpdateExpression="ADD n :one SET m.nested[0] = :v", ReturnValues="ALL_NEW",
                              ExpressionAttributeValues={":one": {"N": "1"}, ":v": {"S": "y"}})["Attributes"]
    assert Decimal(updated["n"]["N"]) == Decimal("13.5") and updated["m"]["M"]["nested"]["L"][0] == {"S": "y"}
    for i in range(5):
        ddb.put_item(TableName=table, Item={"PK": {"S": "FASTSER#2"}, "SK": {"S": f"I{i}"}, "v": {"N": str(i)}})
    page = ddb.query(TableName=table, KeyConditionExpression="PK = :pk", Limit=2,
                     ExpressionAttributeValues={":pk": {"S": "FASTSER#2"}}, ReturnConsumedCapacity="TOTAL")
    assert page["Count"] == 2 and page["LastEvaluatedKey"] == {"PK": {"S": "FASTSER#2"}, "SK": {"S": "I1"}}
    none = ddb.query(TableName=table, KeyConditionExpression="PK = :pk",
                     ExpressionAttributeValues={":pk": {"S": "FASTSER#none"}})
    assert none["Items"] == [] and none["Count"] == 0
    batch = ddb.batch_get_item(RequestItems={table: {"Keys": [
        {"PK": {"S": "FASTSER#2"}, "SK": {"S": f"I{i}"}} for i in range(3)]}})
    assert sorted(int(x["v"]["N"]) for x in batch["Responses"][table]) == [0, 1, 2]
    ddb.batch_write_item(RequestItems={table: [
        {"DeleteRequest": {"Key": {"PK": {"S": "FASTSER#2"}, "SK": {"S": "I4"}}}}]})
    got_tx = ddb.transact_get_items(TransactItems=[{"Get": {"TableName": table, "Key": {
        "PK": ITEM["PK"], "SK": ITEM["SK"]}}}])["Responses"]
    assert got_tx[0]["Item"]["b"] == {"B": b"\x00\xffbinary"}
    ddb.transact_write_items(TransactItems=[{"Update": {
        "TableName": table, "Key": {"PK": ITEM["PK"], "SK": ITEM["SK"]},
        "UpdateExpression": "SET s = :s", "ExpressionAttributeValues": {":s": {"S": "z"}}}}])
    old = ddb.delete_item(TableName=table, Key={"PK": ITEM["PK"], "SK": ITEM["SK"]}, ReturnValues="ALL_OLD")
    assert old["Attributes"]["s"] == {"S": "z"}
    assert checked == []


def test_stream_records_match_moto(checked: list[str], aws_stack: r.ResourceRefs) -> None:
    ddb, streams = aws.client("dynamodb"), aws.client("dynamodbstreams")
    arn = ddb.describe_table(TableName=aws_stack.table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    ddb.put_item(TableName=aws_stack.table, Item=ITEM)
    ddb.update_item(TableName=aws_stack.table, Key={"PK": ITEM["PK"], "SK": ITEM["SK"]},
                    UpdateExpression="SET n = :n", ExpressionAttributeValues={":n": {"N": "1"}})
    records = streams.get_records(ShardIterator=iterator)["Records"]
    mine = [x for x in records if x["dynamodb"]["Keys"]["PK"] == ITEM["PK"]]
    assert [x["eventName"] for x in mine][-2:] == ["INSERT", "MODIFY"] or \
        [x["eventName"] for x in mine][-2:] == ["MODIFY", "MODIFY"]
    last = mine[-1]["dynamodb"]
    assert last["NewImage"]["n"] == {"N": "1"} and last["NewImage"]["b"] == {"B": b"\x00\xffbinary"}
    assert isinstance(last["ApproximateCreationDateTime"].year, int)
    assert Decimal(last["SequenceNumber"]) > 0
    assert checked == []
