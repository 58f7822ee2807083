"""One synthesized stack for every infra test (synth costs seconds; assertions cost nothing)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Before aws_cdk is imported: the jsii runtime (a Node process) reads these when it starts.
# The first is the name the Makefile uses; jsii 1.142 reads the second for Node 20.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = REPO_ROOT / "infra"
if str(INFRA_DIR) not in sys.path:
    sys.path.insert(0, str(INFRA_DIR))


@dataclass(frozen=True)
class Synth:
    stack: Any  # posterflow_infra.stack.PosterflowStack
    template: Any  # aws_cdk.assertions.Template
    json: dict[str, Any]
    outdir: Path

    def resources(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.json["Resources"].items() if v["Type"] == cfn_type}

    def props(self, cfn_type: str) -> list[dict[str, Any]]:
        return [v.get("Properties", {}) for v in self.resources(cfn_type).values()]


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
    return Synth(stack=stack, template=template, json=template.to_json(), outdir=outdir)
