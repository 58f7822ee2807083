"""``Idempotency-Key`` for the routes that create jobs: a retried request gets the first
request's answer (the same job), through Powertools' idempotency utility with DynamoDB
persistence on the project table (records under ``PK = IDEMPOTENCY#api``, expiring through
the table's TTL attribute after a day).

The key is the header value scoped by tenant and route (another API key's identical header
value is another key: a caller can never get someone else's job back by reusing it); the
request body is the validated payload, so the same key with a different body is refused
(422) instead of silently answering with a job the caller did not ask for. A retry that
arrives while the first request is still running gets 409 (retry later). A request that
raised (404 template, 413 ...) leaves no record, so it can be retried with the same key.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from pydantic import BaseModel

from posterflow import aws, config, tenancy
from posterflow.api import request
from posterflow.api.errors import ApiError
from posterflow.errors import Reason
from posterflow.resources import stack_spec

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
RECORD_PK = "IDEMPOTENCY#api"
EXPIRES_AFTER_S = 24 * 3600

Answer = tuple[dict[str, Any], int]

_CONFIG = IdempotencyConfig(
    event_key_jmespath="[tenant, route, key]",
    payload_validation_jmespath="body",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=EXPIRES_AFTER_S,
)


@lru_cache(maxsize=4)
def _runner(table: str) -> Callable[..., dict[str, Any]]:
    """The idempotent call for one table (built lazily: the table name is runtime config)."""
    t = stack_spec().table
    store = DynamoDBPersistenceLayer(
        table_name=table, key_attr=t.partition_key, sort_key_attr=t.sort_key, static_pk_value=RECORD_PK,
        expiry_attr=t.ttl_attribute, status_attr="idempotency_status", data_attr="idempotency_data",
        validation_key_attr="idempotency_validation", boto3_client=aws.client("dynamodb"),
    )

    @idempotent_function(data_keyword_argument="request", persistence_store=store, config=_CONFIG,
                         key_prefix="api")
    def run(*, request: dict[str, Any], produce: Callable[[], Answer]) -> dict[str, Any]:
        body, status = produce()
        return {"status": status, "body": body}

    return run


def header_value() -> str | None:
    value = request.header(HEADER)
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_KEY_CHARS or not value.isprintable():
        raise ApiError(Reason.INVALID_IDEMPOTENCY_KEY,
                       f"{HEADER} must be 1 to {MAX_KEY_CHARS} printable characters")
    return value


def once(route: str, body: BaseModel | dict[str, Any], produce: Callable[[], Answer]) -> Answer:
    """``produce()`` once per (tenant, route, Idempotency-Key); without the header, just
    ``produce()``."""
    key = header_value()
    if key is None:
        return produce()
    payload = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    context = request.lambda_context()
    if context is not None:
        _CONFIG.register_lambda_context(context)
    try:
        record = {"tenant": tenancy.current(), "route": route, "key": key, "body": payload}
        answer = _runner(config.table())(request=record, produce=produce)
    except IdempotencyValidationError:
        raise ApiError(Reason.IDEMPOTENCY_KEY_REUSED,
                       f"this {HEADER} was used with a different request body; use a new key for a new request",
                       {"route": route}) from None
    except IdempotencyAlreadyInProgressError:
        raise ApiError(Reason.IDEMPOTENCY_IN_PROGRESS,
                       f"a request with this {HEADER} is still being processed; retry shortly") from None
    return dict(answer["body"]), int(answer["status"])
