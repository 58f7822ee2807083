"""Bad input to the posterflow command: one clear line on stderr, non-zero exit."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "posterflow_local.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_event_file_not_json(tmp_path: Path) -> None:
    bad = tmp_path / "event.json"
    bad.write_text("{not json")
    proc = run_cli("invoke", "api", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "is not valid JSON" in proc.stderr and "line 1" in proc.stderr


def test_unknown_function(tmp_path: Path) -> None:
    ev = tmp_path / "event.json"
    ev.write_text("{}")
    proc = run_cli("invoke", "nope", str(ev))
    assert proc.returncode == 2
    assert "unknown function 'nope'" in proc.stderr and "render" in proc.stderr


def test_missing_event_file() -> None:
    proc = run_cli("invoke", "api", "/no/such/event.json")
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_port_in_use() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = run_cli("up", "--port", str(port), "--aws-port", "0", "--ws-port", "0")
    assert proc.returncode == 2
    assert f"port {port}" in proc.stderr and "already in use" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
