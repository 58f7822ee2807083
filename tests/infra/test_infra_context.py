"""Context validation: a bad or missing value is one clear line, never a stack trace."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from infra_helpers import REPO_ROOT, Synth
from posterflow_infra.builder import file_context
from posterflow_infra.settings import (
    CTX_ALARM_EMAIL,
    CTX_PREFIX,
    CTX_RESERVED_CONCURRENCY,
    CTX_RETENTION_DAYS,
    CTX_SES_SENDER,
    ContextError,
    parse_settings,
)

GOOD = {CTX_PREFIX: "posterflow", CTX_RETENTION_DAYS: 30, CTX_SES_SENDER: "posterflow@example.com"}


def test_cdk_json_context_is_valid_and_matches_the_spec_defaults() -> None:
    from posterflow import resources as r

    settings = parse_settings(file_context())
    assert settings.spec() == r.stack_spec()  # so the contract tests compare like with like


def test_settings_apply_to_the_spec() -> None:
    s = parse_settings({**GOOD, CTX_RETENTION_DAYS: "7", CTX_SES_SENDER: "ops@example.org",
                        CTX_PREFIX: "pf-staging", CTX_ALARM_EMAIL: "oncall@example.org"})
    spec = s.spec()
    assert (spec.bucket.retention_days, spec.job_retention_days) == (7, 7)
    assert spec.ses_sender == "ops@example.org"
    assert spec.bucket.name == "pf-staging-data" and spec.function("api").name == "pf-staging-api"
    assert s.alarm_email == "oncall@example.org"


@pytest.mark.parametrize(("key", "value", "needle"), [
    (CTX_RETENTION_DAYS, "thirty", "whole number"),
    (CTX_RETENTION_DAYS, 0, "between 1 and"),
    (CTX_RETENTION_DAYS, -5, "between 1 and"),
    (CTX_RETENTION_DAYS, 99999, "between 1 and"),
    (CTX_RETENTION_DAYS, True, "whole number"),
    (CTX_RETENTION_DAYS, None, "missing"),
    (CTX_SES_SENDER, "not-an-email", "email address"),
    (CTX_SES_SENDER, "", "missing"),
    (CTX_PREFIX, "Posterflow_Prod", "lower-case"),
    (CTX_PREFIX, None, "missing"),
    (CTX_ALARM_EMAIL, "oncall", "email address"),
    (CTX_RESERVED_CONCURRENCY, "maybe", "on or off"),
])
def test_bad_values_name_the_key(key: str, value: Any, needle: str) -> None:
    context = {**GOOD, key: value}
    with pytest.raises(ContextError) as err:
        parse_settings(context)
    message = str(err.value)
    assert key in message and needle in message and "\n" not in message


@pytest.mark.parametrize(("value", "expected"), [
    (None, True), ("", True), ("on", True), (True, True), ("off", False), ("OFF", False), (False, False),
])
def test_reserved_concurrency_switch_defaults_to_on(value: Any, expected: bool) -> None:
    assert parse_settings({**GOOD, CTX_RESERVED_CONCURRENCY: value}).reserve_concurrency is expected


def _reserved_by_function(template: dict[str, Any]) -> dict[str, Any]:
    return {props["Properties"]["FunctionName"]: props["Properties"].get("ReservedConcurrentExecutions")
            for props in template["Resources"].values() if props["Type"] == "AWS::Lambda::Function"}


def test_reserved_concurrency_off_removes_the_reservations(synth: Synth, tmp_path: os.PathLike[str]) -> None:
    """The default template (the session's) reserves on render and crop; `-c ...=off` synthesizes
    the same stack without any ReservedConcurrentExecutions (no nag, no bundling: the cheap way)."""
    from aws_cdk.assertions import Template
    from posterflow_infra.builder import build_app

    from posterflow import resources as r

    spec = r.stack_spec()
    default = _reserved_by_function(synth.json)
    assert {name for name, v in default.items() if v is not None} == {
        spec.function("render").name, spec.function("crop").name}
    assert default[spec.function("render").name] == spec.reserved_concurrency("render")

    _app, stack = build_app({CTX_RESERVED_CONCURRENCY: "off"}, outdir=str(tmp_path), nag=False,
                            skip_bundling=True, cfn_validation=False)
    off = _reserved_by_function(dict(Template.from_stack(stack).to_json()))
    assert off.keys() == default.keys()
    assert set(off.values()) == {None}


def test_app_exits_nonzero_with_one_line_on_bad_retention(tmp_path: os.PathLike[str]) -> None:
    env = {**os.environ, "POSTERFLOW_SKIP_BUNDLING": "1", "CDK_VALIDATION": "false"}
    env.pop("CDK_CONTEXT_JSON", None)
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "infra" / "app.py"), "-o", str(tmp_path),
         "-c", f"{CTX_RETENTION_DAYS}=-3"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert proc.returncode == 2
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert lines == [f"posterflow synth: bad context: {CTX_RETENTION_DAYS} must be between 1 and 3650, got -3"]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (os.path.exists(os.path.join(tmp_path, "manifest.json")))
