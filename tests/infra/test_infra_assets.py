"""Assets: the container build contexts hold what the Dockerfiles COPY, and the dependencies
layer's requirement list is the lock minus the container-only packages."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from infra_helpers import REPO_ROOT, Synth
from posterflow_infra.bundling import CONTAINER_ONLY_PACKAGES, export_command

from posterflow import resources as r

SPEC = r.stack_spec()
CONTAINERS = [fn for fn in SPEC.functions if fn.package == "container"]


def _docker_assets(synth: Synth) -> dict[str, Path]:
    """Dockerfile path (relative) → staged build context directory."""
    manifest = json.loads((synth.outdir / f"{synth.stack.artifact_id}.assets.json").read_text())
    return {a["source"]["dockerFile"]: synth.outdir / a["source"]["directory"]
            for a in manifest["dockerImages"].values()}


def _copy_sources(dockerfile: str) -> list[str]:
    """Sources of every COPY that reads the build context (not --from another stage)."""
    sources: list[str] = []
    for line in re.sub(r"\\\n", " ", dockerfile).splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not any(p.startswith("--from") for p in parts):
            sources += [p for p in parts[1:-1] if not p.startswith("--")]
    return sources


@pytest.mark.parametrize("fn", CONTAINERS, ids=lambda f: f.key)
def test_container_context_holds_what_the_dockerfile_copies(synth: Synth, fn: r.FunctionSpec) -> None:
    dockerfile = f"functions/{fn.key}/Dockerfile"
    context = _docker_assets(synth)[dockerfile]
    sources = _copy_sources((context / dockerfile).read_text())
    assert sources, "no COPY from the build context"
    for src in sources:
        assert (context / src).exists(), f"{dockerfile}: COPY {src} is not in the staged build context"
    # Small context: no virtualenv, no caches, no other function.
    staged = {p.relative_to(context).parts[0] for p in context.iterdir()}
    assert staged <= {"pyproject.toml", "uv.lock", "layers", "functions"}
    assert [p.name for p in (context / "functions").iterdir()] == [fn.key]
    assert not list(context.rglob("__pycache__"))


@pytest.mark.parametrize("fn", CONTAINERS, ids=lambda f: f.key)
def test_dockerfile_uses_the_lambda_python_312_base(fn: r.FunctionSpec) -> None:
    text = (REPO_ROOT / "functions" / fn.key / "Dockerfile").read_text()
    final_stage = [line for line in text.splitlines() if line.startswith("FROM ")][-1]
    assert final_stage.split()[1] == "public.ecr.aws/lambda/python:3.12"


def test_render_image_has_chromium_and_fonts() -> None:
    text = (REPO_ROOT / "functions" / "render" / "Dockerfile").read_text()
    for needle in ("playwright install", "fonts-noto-color-emoji", "fonts-noto-cjk", "fc-cache"):
        assert needle in text


def test_render_image_carries_the_fabric_bundle(synth: Synth) -> None:
    """The canvas renderer's vendored Fabric.js bundle is in the staged build context, and the
    image build checks it against its pinned checksum."""
    context = _docker_assets(synth)["functions/render/Dockerfile"]
    vendor = context / "layers/core/python/posterflow/render/vendor"
    digest, name = (vendor / "fabric.min.js.sha256").read_text().split()
    assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest
    assert (vendor / "fabric.LICENSE").exists() and (vendor / "canvas_page.js").exists()
    text = (REPO_ROOT / "functions" / "render" / "Dockerfile").read_text()
    assert "sha256sum -c fabric.min.js.sha256" in text


def test_crop_image_ships_the_yunet_model() -> None:
    text = (REPO_ROOT / "functions" / "crop" / "Dockerfile").read_text()
    assert "face_detection_yunet_2023mar.onnx" in text and "--prune playwright" in text


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is not installed")
def test_dependencies_layer_requirements_exclude_container_only_packages() -> None:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    locked = {p["name"] for p in lock["package"]}
    # A misspelt name would be pruned silently (uv ignores unknown packages).
    assert set(CONTAINER_ONLY_PACKAGES) <= locked
    out = subprocess.run(export_command(), cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    exported = {re.split(r"[=<>;\s]", line, maxsplit=1)[0].lower() for line in out.splitlines() if line.strip()}
    assert exported.isdisjoint(CONTAINER_ONLY_PACKAGES)
    assert {"aws-lambda-powertools", "pydantic", "jinja2"} <= exported
    assert exported.isdisjoint({"aws-cdk-lib", "moto", "pytest"})  # no dev/infra groups
