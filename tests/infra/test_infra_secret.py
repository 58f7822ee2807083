"""The signing secret in the stack: functions get its ARN and read permission, never its value."""

from __future__ import annotations

import json
from typing import Any

from infra_helpers import INFRA_DIR, Synth
from template_views import function_props, ref_target, resources, role_statements

from posterflow import config
from posterflow import resources as r
from posterflow_local.provision import signing_secret_name

SPEC = r.stack_spec()
# The functions that sign or verify: job creation (api, splitter's S3 drops), the progress
# socket's $connect, and finalize's download links and webhooks.
NEEDS_SECRET = {"api", "splitter", "progress", "stream", "finalize"}  # stream: verifies job tokens


def _secret_id(synth: Synth) -> str:
    (lid,) = resources(synth.json, "AWS::SecretsManager::Secret")
    return lid


def test_no_function_configuration_holds_the_secret_value(synth: Synth) -> None:
    for fn in SPEC.functions:
        variables = function_props(synth.json, fn.name).get("Environment", {}).get("Variables", {})
        assert config.ENV_SIGNING_SECRET not in variables, fn.key
        # A dynamic reference ({{resolve:secretsmanager:…}}) puts the value into the deployed
        # configuration in plain text, visible to anyone who may read the function.
        assert "resolve:secretsmanager" not in json.dumps(variables), fn.key
    assert "{{resolve:secretsmanager" not in json.dumps(synth.json)


def test_the_stack_source_never_unwraps_the_secret() -> None:
    for source in sorted(INFRA_DIR.glob("posterflow_infra/*.py")):
        assert "unsafe_unwrap" not in source.read_text(), source.name


def test_functions_that_sign_get_the_arn_and_read_permission(synth: Synth) -> None:
    secret = _secret_id(synth)
    for fn in SPEC.functions:
        variables = function_props(synth.json, fn.name)["Environment"]["Variables"]
        reads = [st for st in role_statements(synth.json, fn.name) if _grants_read(st, secret)]
        if fn.key in NEEDS_SECRET:
            assert ref_target(variables[config.ENV_SIGNING_SECRET_ARN]) == secret, fn.key
            assert reads, f"{fn.key} cannot read the signing secret"
        else:
            assert config.ENV_SIGNING_SECRET_ARN not in variables, fn.key
            assert not reads, f"{fn.key} may read the signing secret but never uses it"


def _grants_read(statement: dict[str, Any], secret: str) -> bool:
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    return (statement["Effect"] == "Allow" and "secretsmanager:GetSecretValue" in actions
            and any(isinstance(t, dict) and ref_target(t) == secret for t in targets))


def test_secret_has_the_local_clouds_name(synth: Synth) -> None:
    props = synth.json["Resources"][_secret_id(synth)]["Properties"]
    assert props["Name"] == signing_secret_name(SPEC)
    assert "GenerateSecretString" in props and "SecretString" not in props
