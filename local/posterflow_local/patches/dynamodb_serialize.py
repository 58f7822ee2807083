"""Direct JSON for the embedded AWS's hot DynamoDB and DynamoDB Streams responses.

moto 5 serialises every response by walking the operation's botocore output shape, member
by member, through attribute pickers; for results made of DynamoDB attribute values (items,
stream images) that walk cost more than the operation itself: 28% of the process's CPU in a
1,000-poster batch (py-spy, bench/batch.py), most of it in the progress stream's GetRecords.
These results are already plain JSON-shaped data, so for the operations below the same
document is produced with one ``json.dumps``: ``None`` members left out, bytes base64-encoded
and datetimes as epoch seconds truncated to milliseconds, as the shape walk does.

``POSTERFLOW_CHECK_FAST_SERIALIZE=1`` serialises every such response both ways and raises on
any difference (tests/integration/test_local_fast_serialize.py runs real traffic that way).
"""

from __future__ import annotations

import base64
import calendar
import json
from datetime import datetime
from typing import Any

from moto.core import responses as moto_responses
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.utilities import dynamo_to_dict
from moto.dynamodb.responses import DynamoResult

from posterflow_local import settings
from posterflow_local.patches._patch import Patch, Replacement

FAST_OPERATIONS = {
    "dynamodb": {
        "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
        "BatchWriteItem", "TransactWriteItems", "TransactGetItems",
    },
    "dynamodbstreams": {"GetRecords"},
}

_original_execute_result = moto_responses.ActionResult.execute_result


class SerializationMismatch(AssertionError):
    pass


# Every mismatch the check mode found, kept even when a caller swallows the exception.
mismatches: list[str] = []


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        seconds = calendar.timegm(value.utctimetuple())
        return seconds + (value.microsecond // 1000) / 1000.0 if value.microsecond else seconds
    if isinstance(value, DynamoType):
        return _plain(dynamo_to_dict(value))
    raise TypeError(f"no fast serialisation for {type(value).__name__}")


def _content_type(context: Any) -> str:
    version = context.service_model.metadata.get("jsonVersion", "1.0")
    return f"application/x-amz-json-{version}"


def _execute_result(self: Any, context: Any) -> Any:
    operations = FAST_OPERATIONS.get(str(context.service_model.service_name))
    if operations is None or context.operation_model.name not in operations or type(self) not in _RESULT_TYPES:
        return _original_execute_result(self, context)
    result = self.result
    if isinstance(result, dict):
        # The shape walk writes only the output shape's members (moto adds legacy extras).
        members = context.operation_model.output_shape.members
        result = {k: v for k, v in result.items() if k in members}
    try:
        body = json.dumps(_plain(result), separators=(",", ":"))
    except TypeError:
        return _original_execute_result(self, context)
    if settings.check_fast_serialize():
        _check(self, context, body)
    return 200, {"Content-Type": _content_type(context)}, body


def _check(result: Any, context: Any, body: str) -> None:
    status, headers, reference = _original_execute_result(result, context)
    if status != 200 or json.loads(reference) != json.loads(body) or \
            headers.get("Content-Type") != _content_type(context):
        found = f"{context.operation_model.name}: fast {body[:400]} != moto {status} {headers} {str(reference)[:400]}"
        mismatches.append(found)
        raise SerializationMismatch(found)


_RESULT_TYPES: set[type] = {moto_responses.ActionResult, DynamoResult}

PATCH = Patch("dynamodb_serialize", [
    Replacement(moto_responses.ActionResult, "execute_result", _execute_result),
])
