"""Low-level helpers: keys, attribute (de)serialisation, cursors and transactions.

The jobs library uses the low-level DynamoDB client (shared, thread-safe, cached by
:mod:`posterflow.aws`) rather than the resource API, which boto3 does not make thread-safe.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from posterflow import aws, config
from posterflow import resources as r
from posterflow.jobs.errors import (
    InvalidCursor,
)

META = "META"
INDEX = "INDEX"
ITEM_PREFIX = "ITEM#"
LOG_PREFIX = "LOG#"
ITEM_ID_WIDTH = 6
MAX_ITEMS = 10**ITEM_ID_WIDTH  # ids 000000..999999 keep lexicographic order == numeric order

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def spec() -> r.TableSpec:
    return r.stack_spec().table


def table() -> str:
    return config.table()


def ddb() -> Any:
    return aws.client("dynamodb")


def job_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def item_sk(item_id: int) -> str:
    if not 0 <= item_id < MAX_ITEMS:
        raise ValueError(f"item id {item_id} out of range 0..{MAX_ITEMS - 1}")
    return f"{ITEM_PREFIX}{item_id:0{ITEM_ID_WIDTH}d}"


def key(pk: str, sk: str) -> dict[str, Any]:
    t = spec()
    return {t.partition_key: {"S": pk}, t.sort_key: {"S": sk}}


def now_iso() -> str:
    # Fixed width with microseconds, so ISO strings sort like the instants they name.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _to_ddb_value(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {str(k): _to_ddb_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_ddb_value(v) for v in value]
    return value


def _from_ddb_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_ddb_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_ddb_value(v) for v in value]
    if isinstance(value, set):
        return sorted(_from_ddb_value(v) for v in value)
    return value


def av(value: Any) -> dict[str, Any]:
    """One Python value as a DynamoDB attribute value (floats become Decimals)."""
    return dict(_serializer.serialize(_to_ddb_value(value)))


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """A Python mapping as a DynamoDB item, leaving out ``None`` values (absent = null)."""
    return {k: av(v) for k, v in values.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _from_ddb_value(_deserializer.deserialize(v)) for k, v in item.items()}


def encode_cursor(scope: str, position: str) -> str:
    raw = json.dumps({"s": scope, "p": position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, scope: str) -> str:
    """The position inside ``scope`` (a job id, a listing name) that the cursor points after."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        position = data["p"]
        found_scope = data["s"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidCursor("malformed cursor") from exc
    if found_scope != scope or not isinstance(position, str):
        raise InvalidCursor("cursor belongs to another listing")
    return position


def is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def cancellation_codes(exc: ClientError) -> list[str]:
    """The per-operation reason codes of a cancelled transaction ("None" = that one was fine)."""
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return []
    return [str(reason.get("Code", "None")) for reason in exc.response.get("CancellationReasons", [])]


# Reasons that mean "try again": another transaction touched the same item (the job META
# item is shared by every worker of a job), or throttling. botocore does not retry these.
_RETRYABLE = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}


def transact(operations: Sequence[dict[str, Any]], *, attempts: int = 10) -> None:
    """TransactWriteItems, retried with jittered backoff while only retryable reasons cancel
    it. A cancellation for any other reason (a failed condition) is raised to the caller."""
    for attempt in range(attempts):
        try:
            # A fresh token per attempt: botocore's own retries of this call reuse it, so a
            # transaction that succeeded but whose answer was lost is not applied twice.
            ddb().transact_write_items(TransactItems=list(operations), ClientRequestToken=uuid.uuid4().hex)
            return
        except ClientError as exc:
            codes = cancellation_codes(exc)
            retryable = codes and all(c in _RETRYABLE or c == "None" for c in codes)
            if not retryable or attempt == attempts - 1:
                raise
            time.sleep(min(1.0, 0.02 * 2**attempt) * random.random())


def names(*attrs: str) -> dict[str, str]:
    """ExpressionAttributeNames for attributes, so reserved words (status, total, name ...)
    never reach an expression bare."""
    return {f"#{a}": a for a in attrs}
