"""Where things are in the repository. Absolute, so synth works from any working directory."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = REPO_ROOT / "infra"
FUNCTIONS_DIR = REPO_ROOT / "functions"
CORE_LAYER_DIR = REPO_ROOT / "layers" / "core"
CDK_JSON = REPO_ROOT / "cdk.json"
DEFAULT_OUTDIR = REPO_ROOT / "cdk.out"
