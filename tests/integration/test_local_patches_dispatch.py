"""moto's server with memoised dispatch routes every request where moto's own look-ups route
it: the same backend for each host or service name, the same action methods for each response
class, and the same responses to the same calls on every service the stack uses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from posterflow import aws
from posterflow import resources as r

HOSTS: list[str | None] = [
    None, "moto_api", "s3", "sqs", "dynamodb", "dynamodbstreams", "ses", "secretsmanager", "stepfunctions",
    "s3.amazonaws.com", "my-bucket.s3.us-east-1.amazonaws.com", "sqs.us-east-1.amazonaws.com",
    "dynamodb.us-east-1.amazonaws.com", "states.us-east-1.amazonaws.com", "127.0.0.1:4566", "nowhere.example",
]


def _calls(refs: r.ResourceRefs) -> list[tuple[str, Callable[[], Any]]]:
    s3, sqs, ddb = aws.client("s3"), aws.client("sqs"), aws.client("dynamodb")
    return [
        ("s3 buckets", lambda: s3.list_buckets()["Buckets"]),
        ("s3 objects", lambda: s3.list_objects_v2(Bucket=refs.bucket, Prefix="tests/dispatch/")),
        ("s3 missing bucket", lambda: s3.head_bucket(Bucket="no-such-bucket-posterflow")),
        ("sqs queues", lambda: sorted(sqs.list_queues(QueueNamePrefix="posterflow")["QueueUrls"])),
        ("sqs attributes", lambda: sqs.get_queue_attributes(QueueUrl=refs.queue_urls["render"],
                                                            AttributeNames=["QueueArn", "RedrivePolicy"])),
        ("dynamodb table", lambda: ddb.describe_table(TableName=refs.table)["Table"]),
        ("dynamodb missing table", lambda: ddb.describe_table(TableName="no-such-table")),
        ("dynamodb streams", lambda: aws.client("dynamodbstreams").list_streams(TableName=refs.table)["Streams"]),
        ("ses quota", lambda: aws.client("ses").get_send_quota()),
        ("secrets", lambda: [s["Name"] for s in aws.client("secretsmanager").list_secrets()["SecretList"]]),
        ("state machines", lambda: aws.client("stepfunctions").list_state_machines()["stateMachines"]),
    ]


def _responses(refs: r.ResourceRefs) -> list[Any]:
    seen: list[Any] = []
    for label, call in _calls(refs):
        try:
            result = call()
        except ClientError as exc:
            seen.append((label, exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]))
            continue
        if isinstance(result, dict):
            result = {k: v for k, v in result.items() if k != "ResponseMetadata"}
        seen.append((label, result))
    return seen


@pytest.fixture
def moto_dispatch(cloud: object) -> Iterator[None]:
    """moto's own per-request look-ups for a test, then the memoised ones again."""
    from posterflow_local.patches import dispatch

    with dispatch.PATCH.removed():
        yield


def test_same_backend_for_every_host(cloud: object) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from posterflow_local.patches import dispatch

    app = DomainDispatcherApplication(create_backend_app)
    for host in HOSTS:
        expected = dispatch._original(app, host)
        assert dispatch._get_backend_for_host(app, host) == expected, host
        assert dispatch._get_backend_for_host(app, host) == expected, host  # from the cache now
    assert dispatch._get_backend_for_host(app, "s3") == "s3"


def test_same_action_methods_for_every_response_class(cloud: object) -> None:
    from moto.core.responses import BaseResponse

    from posterflow_local.patches import dispatch

    classes = [c for c in _subclasses(BaseResponse) if c.__module__.startswith("moto.")]
    assert len(classes) >= 5  # the services loaded so far
    for clazz in classes:
        expected = dispatch._original_method_names(clazz)
        assert dispatch._method_names_from_class(clazz) == expected, clazz
        assert dispatch._method_names_from_class(clazz) == expected, clazz


def _subclasses(clazz: type) -> list[type]:
    found: list[type] = []
    for sub in clazz.__subclasses__():
        found.extend([sub, *_subclasses(sub)])
    return found


def test_same_responses_as_moto(aws_stack: r.ResourceRefs, request: pytest.FixtureRequest) -> None:
    from moto.core import responses as moto_responses
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from posterflow_local.patches import dispatch

    aws.client("s3").put_object(Bucket=aws_stack.bucket, Key="tests/dispatch/a.txt", Body=b"a")
    assert DomainDispatcherApplication.get_backend_for_host is dispatch._get_backend_for_host
    patched = _responses(aws_stack)
    request.getfixturevalue("moto_dispatch")
    assert moto_responses.method_names_from_class is dispatch._original_method_names
    reference = _responses(aws_stack)
    assert patched == reference
    assert ("dynamodb missing table", 400, "ResourceNotFoundException") in reference
    assert ("s3 missing bucket", 404, "404") in reference
