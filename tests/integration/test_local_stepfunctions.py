"""Step Functions on the local cloud run Lambda tasks in-process, with Retry/Catch by error name."""

from __future__ import annotations

import json
import uuid
from typing import Any

from posterflow import aws
from tests.integration.helpers import wait_for


class TransientError(Exception):
    pass


class PermanentError(Exception):
    pass


def test_retry_on_error_name_then_catch(cloud: Any) -> None:
    attempts: list[str] = []

    def flaky(event: dict[str, Any], context: Any) -> dict[str, Any]:
        attempts.append("flaky")
        if len(attempts) < 3:
            raise TransientError("try again")
        return {"value": event["value"] * 2}

    def broken(event: dict[str, Any], context: Any) -> None:
        raise PermanentError("cannot do this")

    suffix = uuid.uuid4().hex[:8]
    cloud.register_function(f"t-flaky-{suffix}", flaky)
    cloud.register_function(f"t-broken-{suffix}", broken)
    arn = "arn:aws:lambda:us-east-1:123456789012:function:"
    definition = {
        "StartAt": "Flaky",
        "States": {
            "Flaky": {
                "Type": "Task", "Resource": f"{arn}t-flaky-{suffix}", "ResultPath": "$.flaky",
                "Retry": [{"ErrorEquals": ["TransientError"], "IntervalSeconds": 1, "MaxAttempts": 3,
                           "BackoffRate": 1.0}],
                "Next": "Broken",
            },
            "Broken": {
                "Type": "Task", "Resource": f"{arn}t-broken-{suffix}",
                "Catch": [{"ErrorEquals": ["PermanentError"], "ResultPath": "$.error", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    sfn = aws.client("stepfunctions")
    sm = sfn.create_state_machine(name=f"t-{suffix}", definition=json.dumps(definition),
                                  roleArn="arn:aws:iam::123456789012:role/t")["stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=sm, name=f"run-{suffix}", input=json.dumps({"value": 21}))
    done = wait_for(lambda: (d := sfn.describe_execution(executionArn=ex["executionArn"]))["status"] != "RUNNING"
                    and d, timeout=60, what="execution to finish")
    assert done["status"] == "SUCCEEDED", done
    output = json.loads(done["output"])
    assert output["flaky"] == {"value": 42}
    assert output["error"]["Error"] == "PermanentError"
    assert len(attempts) == 3
