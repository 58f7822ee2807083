"""The vendored Fabric.js bundle is the pinned one: checksum, version, licence, no network."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from posterflow.render import canvas
from posterflow.render.engine import INTERNAL_ORIGIN


def test_bundle_matches_its_pinned_checksum() -> None:
    data = (canvas.VENDOR_DIR / canvas.FABRIC_FILE).read_bytes()
    assert hashlib.sha256(data).hexdigest() == canvas.fabric_checksum()
    # The checksum file is in `sha256sum -c` format and names the bundle.
    digest, name = (canvas.VENDOR_DIR / f"{canvas.FABRIC_FILE}.sha256").read_text().split()
    assert name == canvas.FABRIC_FILE and re.fullmatch(r"[0-9a-f]{64}", digest)


def test_bundle_is_the_pinned_version_with_its_licence() -> None:
    data = (canvas.VENDOR_DIR / canvas.FABRIC_FILE).read_text()
    assert f'"{canvas.FABRIC_VERSION}"' in data
    assert canvas.FABRIC_VERSION.startswith("6.")
    licence = (canvas.VENDOR_DIR / "fabric.LICENSE").read_text()
    assert "Permission is hereby granted, free of charge" in licence


def test_page_serves_only_the_engine_scripts() -> None:
    files = canvas.page_files()
    assert set(files) == {"/canvas.html", f"/{canvas.FABRIC_FILE}", f"/{canvas.PAGE_SCRIPT}"}
    csp = files["/canvas.html"].headers["content-security-policy"]
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src")).split()[1:]
    assert script_src == [f"{INTERNAL_ORIGIN}/{canvas.FABRIC_FILE}", f"{INTERNAL_ORIGIN}/{canvas.PAGE_SCRIPT}"]
    assert "'unsafe-inline'" not in " ".join(script_src) and "unsafe-eval" not in csp
    html = files["/canvas.html"].body.decode()
    # Every script the page loads is one of the two local files: nothing from a network.
    assert re.findall(r"<script[^>]*src=\"([^\"]+)\"", html) == [f"/{canvas.FABRIC_FILE}", f"/{canvas.PAGE_SCRIPT}"]
    assert "http" not in html.replace(INTERNAL_ORIGIN, "")


def test_a_tampered_bundle_is_not_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (canvas.FABRIC_FILE, f"{canvas.FABRIC_FILE}.sha256", canvas.PAGE_SCRIPT):
        (tmp_path / name).write_bytes((canvas.VENDOR_DIR / name).read_bytes())
    (tmp_path / canvas.FABRIC_FILE).write_bytes(b"window.fabric = {};")
    monkeypatch.setattr(canvas, "VENDOR_DIR", tmp_path)
    canvas.page_files.cache_clear()
    try:
        with pytest.raises(canvas.RenderError, match="checksum"):
            canvas.page_files()
    finally:
        monkeypatch.undo()
        canvas.page_files.cache_clear()
