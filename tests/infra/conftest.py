"""One synthesized stack for every infra test (synth costs seconds; assertions cost nothing)."""

from __future__ import annotations

import pytest
from infra_helpers import Synth


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The stack with cdk.json's context, cdk-nag on, synthesized once.

    Fast and offline: the dependencies layer is not bundled (no uv install) and CDK's
    built-in CloudFormation validation is off: cfn-lint runs in its own test instead.
    A cdk-nag violation fails this fixture (synth raises), and the nag test says which.
    """
    from aws_cdk.assertions import Template
    from posterflow_infra.builder import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    _app, stack = build_app(outdir=str(outdir), skip_bundling=True, cfn_validation=False)
    template = Template.from_stack(stack)
    return Synth(stack=stack, template=template, json=dict(template.to_json()), outdir=outdir)
