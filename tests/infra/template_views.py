"""Read the synthesized template by the names the resource spec uses, not by logical ids."""

from __future__ import annotations

from typing import Any

Template = dict[str, Any]


def resources(t: Template, cfn_type: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in t["Resources"].items() if r["Type"] == cfn_type}


def logical_id_by_prop(t: Template, cfn_type: str, prop: str, value: str) -> str:
    found = [lid for lid, r in resources(t, cfn_type).items() if r.get("Properties", {}).get(prop) == value]
    assert len(found) == 1, f"{cfn_type} with {prop}={value!r}: found {found}"
    return found[0]


def ref_target(value: Any) -> str:
    """The logical id behind ``{"Ref": id}`` or ``{"Fn::GetAtt": [id, attr]}``."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    raise AssertionError(f"not a reference: {value!r}")


def queue_names(t: Template) -> dict[str, str]:
    """logical id → QueueName."""
    return {lid: r["Properties"]["QueueName"] for lid, r in resources(t, "AWS::SQS::Queue").items()}


def function_names(t: Template) -> dict[str, str]:
    """logical id → FunctionName."""
    return {lid: r["Properties"]["FunctionName"] for lid, r in resources(t, "AWS::Lambda::Function").items()}


def function_props(t: Template, name: str) -> dict[str, Any]:
    lid = logical_id_by_prop(t, "AWS::Lambda::Function", "FunctionName", name)
    return dict(t["Resources"][lid]["Properties"])


def role_statements(t: Template, function_name: str) -> list[dict[str, Any]]:
    """Every statement of the inline policies attached to a function's role."""
    role = ref_target(function_props(t, function_name)["Role"])
    out: list[dict[str, Any]] = []
    for r in resources(t, "AWS::IAM::Policy").values():
        if any(ref_target(x) == role for x in r["Properties"].get("Roles", [])):
            out.extend(r["Properties"]["PolicyDocument"]["Statement"])
    return out


def actions_of(statements: list[dict[str, Any]]) -> set[str]:
    acts: set[str] = set()
    for st in statements:
        a = st["Action"]
        acts.update([a] if isinstance(a, str) else a)
    return acts
