"""cdk-nag AwsSolutions, CDK annotations and cfn-lint on the synthesized stack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from aws_cdk.assertions import Annotations, Match
from infra_helpers import Synth

# cfn-lint findings accepted on CDK output: W3005 flags the DependsOn that CDK adds next to a
# GetAtt of the same role (harmless, and CDK's ordering guarantee for policies).
ACCEPTED_CFN_LINT_WARNINGS = {"W3005"}
MIN_REASON_CHARS = 40


def _nag_report(synth: Synth) -> dict[str, Any]:
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    (nag,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    return dict(nag)


def _acknowledged(nag: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for v in nag["suppressedViolations"]:
        yield v["acknowledgedAt"], v["acknowledgedId"]


def test_cdk_nag_has_no_unacknowledged_findings(synth: Synth) -> None:
    nag = _nag_report(synth)
    assert nag["conclusion"] == "success"
    assert [v["ruleName"] for v in nag["violations"]] == []


def test_every_acknowledgment_has_a_reason_and_still_matches_a_finding(synth: Synth) -> None:
    nag = _nag_report(synth)
    for v in nag["suppressedViolations"]:
        assert len(v["reason"]) >= MIN_REASON_CHARS, (v["acknowledgedId"], v["reason"])
    used = set(_acknowledged(nag))
    made = set(synth.stack.nag_acknowledgments)
    assert made, "cdk-nag acknowledgments were not recorded"
    assert made - used == set(), "stale acknowledgments (they match no finding any more)"


def test_no_cdk_errors_or_warnings(synth: Synth) -> None:
    annotations = Annotations.from_stack(synth.stack)
    assert annotations.find_error("*", Match.any_value()) == []
    assert annotations.find_warning("*", Match.any_value()) == []


def test_cfn_lint_has_no_errors(synth: Synth) -> None:
    from cfnlint.api import lint

    matches = lint(json.dumps(synth.json), regions=["us-east-1"])
    found = {(m.rule.id, m.message) for m in matches}
    errors = {f for f in found if f[0].startswith("E")}
    assert errors == set()
    assert {rule for rule, _ in found if rule.startswith("W")} <= ACCEPTED_CFN_LINT_WARNINGS, found
