"""The README's first command: `posterflow demo` runs the main job end to end and exits 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image


def test_demo_runs_the_main_job(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "posterflow_local.cli", "demo", "--out", str(out),
         "--aws-port", "0", "--port", "0", "--ws-port", "0"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["crops"]["status"] == "completed" and summary["crops"]["cropped"] == 8
    assert summary["crops"]["skipped"] == 2  # __MACOSX entry and a README are counted, not lost
    assert summary["posters"]["status"] == "completed" and summary["posters"]["succeeded"] == 200
    posters = sorted((out / "posters").glob("*.jpg"))
    assert len(posters) == 200 and Image.open(posters[0]).size == (1080, 1080)
    assert len(list((out / "crops").glob("*.jpg"))) == 8
    mails = list((out / "mail").glob("*.eml"))
    assert len(mails) == 2 and any("/download?token=" in m.read_text(errors="replace") for m in mails)
    # The terminal shows the demo's own lines; what the functions print (Powertools' JSON log
    # lines, EMF metric documents) is in a log file per function, as CloudWatch Logs keeps it.
    assert json.loads(proc.stdout) == summary
    assert '"_aws"' not in proc.stderr and '"function_request_id"' not in proc.stderr, proc.stderr[-3000:]
    render_log = out / "logs" / "posterflow-render.log"
    emf = [json.loads(line) for line in render_log.read_text().splitlines() if line.startswith('{"_aws"')]
    assert sum(len(d["PostersRendered"]) if isinstance(d["PostersRendered"], list) else 1
               for d in emf if "PostersRendered" in d) >= 200 + summary["postcards"]["succeeded"]
