"""The finalize state machine's definition: wiring, retries and catches, error names the code raises."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from posterflow import resources as r
from posterflow.finalize import archive, webhook, workflow

DEFINITION = r.stack_spec().state_machine("finalize").definition_path
ASL: dict[str, Any] = json.loads(DEFINITION.read_text())
STATES: dict[str, Any] = ASL["States"]
LAMBDA_TRANSIENT = {"Lambda.ServiceException", "Lambda.TooManyRequestsException"}


def successors(state: dict[str, Any]) -> set[str]:
    out = {state[k] for k in ("Next", "Default") if k in state}
    out |= {c["Next"] for c in state.get("Choices", [])}
    out |= {c["Next"] for c in state.get("Catch", [])}
    return out


def test_only_known_placeholders() -> None:
    found = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", DEFINITION.read_text()))
    assert found <= {"FinalizeFunctionArn", "TableName", "SesSender"}


def test_every_state_is_reachable_and_every_target_exists() -> None:
    seen, todo = set(), [ASL["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        assert name in STATES, f"{name} is referenced but not defined"
        seen.add(name)
        todo.extend(successors(STATES[name]))
    assert seen == set(STATES)


def test_tasks_call_actions_the_function_knows() -> None:
    actions = set(workflow.FinalizeEvent.model_fields["action"].annotation.__args__)  # type: ignore[union-attr]
    for name, state in STATES.items():
        if state["Type"] == "Task":
            assert state["Resource"] == "${FinalizeFunctionArn}", name
            assert state["Parameters"]["action"] in actions, name
            assert state["Parameters"]["finalize_round.$"] == "$.finalize_round", name


def test_archive_and_completion_failures_go_to_record_failure() -> None:
    for name in ("BuildArchive", "MarkDone"):
        (catch,) = STATES[name]["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"] and catch["Next"] == "RecordFailure"
        assert set(STATES[name]["Retry"][0]["ErrorEquals"]) >= LAMBDA_TRANSIENT
        # ArchiveError is a verdict, not a hiccup: retrying would fail again.
        assert all(archive.ArchiveError.__name__ not in rule["ErrorEquals"] for rule in STATES[name]["Retry"])


def test_webhook_retries_with_backoff_on_its_retryable_error_only() -> None:
    rules = STATES["CallWebhook"]["Retry"]
    (rule,) = [x for x in rules if webhook.WebhookRetryableError.__name__ in x["ErrorEquals"]]
    assert rule["MaxAttempts"] >= 2 and rule["BackoffRate"] > 1 and rule["IntervalSeconds"] >= 1
    for name in (webhook.WebhookRefused.__name__, webhook.WebhookRejected.__name__, "States.ALL"):
        assert all(name not in x["ErrorEquals"] for x in rules)
    assert STATES["CallWebhook"]["Catch"][0]["Next"] == "RecordWebhookFailure"


@pytest.mark.parametrize("task", ["SendEmail", "CallWebhook"])
def test_notification_failures_never_fail_the_job(task: str) -> None:
    (catch,) = STATES[task]["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"]
    recorder = STATES[catch["Next"]]
    assert recorder["Parameters"]["action"] == "notify_failed"
    assert recorder["Next"] in ("HasWebhook", "IsJobFailed")


def test_only_merge_pdf_jobs_reach_the_merge_task() -> None:
    """The trigger's input carries merge_pdf: false skips MergePdf; true (or an input without
    the field, e.g. a hand-started run) goes through it, where other jobs are done at once."""
    assert ASL["StartAt"] == "NeedsMergePdf"
    choice = STATES["NeedsMergePdf"]
    assert choice["Type"] == "Choice" and choice["Default"] == "MergePdf"
    (rule,) = choice["Choices"]
    assert rule["Next"] == "BuildArchive"
    assert {"Variable": "$.merge_pdf", "IsPresent": True} in rule["And"]
    assert {"Variable": "$.merge_pdf", "BooleanEquals": False} in rule["And"]
    assert STATES["MergeDone"]["Default"] == "BuildArchive"


def test_email_retry_names_the_transient_error() -> None:
    assert workflow.EmailTransientError.__name__ in STATES["SendEmail"]["Retry"][0]["ErrorEquals"]


def test_failed_jobs_end_in_a_fail_state_after_notifying() -> None:
    assert STATES["RecordFailure"]["Next"] == "FailureNeedsNotice"
    assert STATES["FailureNeedsNotice"]["Choices"][0]["Next"] == "HasNotifyEmail"
    choice = STATES["IsJobFailed"]["Choices"][0]
    assert choice["StringEquals"] == "failed" and STATES[choice["Next"]]["Type"] == "Fail"


def test_error_text_reads_lambda_causes() -> None:
    cause = json.dumps({"errorMessage": "output of item 3 is missing", "errorType": "ArchiveError"})
    assert workflow.error_text({"Error": "ArchiveError", "Cause": cause}) == "ArchiveError: output of item 3 is missing"
    assert workflow.error_text({"Error": "States.Timeout", "Cause": "took too long"}) == "States.Timeout: took too long"
    assert workflow.error_text(None) == "unknown error"
