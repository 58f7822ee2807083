"""Shared by the infra tests: environment for jsii/CDK, paths, and the synthesized stack's shape.

Kept out of conftest.py so that test modules import it by a unique name (several test folders
have a conftest.py, and ``import conftest`` would pick whichever was imported last).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
