"""posterflow-client installs alone: a fresh virtual environment gets ``./clients/python`` and
nothing of the server (boto3, Playwright, OpenCV, moto, CDK)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import posterflow_client
import pytest

from posterflow import resources as r

CLIENT = r.REPO_ROOT / "clients" / "python"
SERVER_ONLY = ("boto3", "botocore", "playwright", "cv2", "moto", "aws_cdk", "posterflow", "posterflow_local")

PROBE = f"""
import importlib.util, json, pathlib, sys
import posterflow_client
from posterflow_client import Client, webhooks
present = [m for m in {SERVER_ONLY!r} if importlib.util.find_spec(m) is not None]
typed = (pathlib.Path(posterflow_client.__file__).parent / "py.typed").is_file()
print(json.dumps({{"version": posterflow_client.__version__, "present": present, "typed": typed,
                  "file": posterflow_client.__file__}}))
"""


def test_client_installs_alone_without_server_packages(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed: cannot build a fresh environment quickly")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT", "PYTHONPATH"))}
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, env=env, timeout=60)
    python = venv / "bin" / "python"
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python), str(CLIENT)],
                   check=True, env=env, timeout=120, cwd=tmp_path)
    out = subprocess.run([str(python), "-I", "-c", PROBE], check=True, capture_output=True, text=True,
                         env=env, timeout=60, cwd=tmp_path)
    import json

    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["present"] == [], f"server packages in the client's environment: {found['present']}"
    assert found["typed"] and found["version"] == posterflow_client.__version__
    assert str(venv) in found["file"]  # the installed copy, not this repository's source
    listed = subprocess.run([uv, "pip", "list", "--python", str(python), "--format", "freeze"], check=True,
                            capture_output=True, text=True, env=env, timeout=60).stdout
    names = {line.split("==")[0].lower() for line in listed.splitlines() if "==" in line}
    assert "posterflow-client" in names and "httpx" in names and "pydantic" in names
    assert not names & {"boto3", "playwright", "opencv-python-headless", "moto", "aws-cdk-lib", "django"}
