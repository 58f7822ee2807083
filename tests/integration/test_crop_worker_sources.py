"""The crop worker's message shapes and its URL policy where Playwright is absent (the crop image)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from posterflow.crop.worker import CropMessage

ROOT = Path(__file__).resolve().parents[2]


_ENTRY = {"index": 0, "name": "a.jpg", "local_header_offset": 0, "compressed_size": 1, "uncompressed_size": 1,
          "method": 0, "flags": 0, "crc": 0, "cd_offset": 31, "next_cd_offset": 82, "uncompressed_through": 1,
          "verdict": "image"}


@pytest.mark.parametrize(("body", "message"), [
    ({"job_id": "j", "item_id": 0}, "exactly one of key and url"),
    ({"job_id": "j", "item_id": 0, "key": "a.jpg", "url": "https://example.com/a.jpg"}, "exactly one of key and url"),
    ({"job_id": "j", "item_id": 0, "url": "https://example.com/a.zip", "entry": _ENTRY}, "bucket and key"),
])
def test_a_message_names_exactly_one_photo(body: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CropMessage.model_validate_json(json.dumps(body))


def test_splitter_messages_still_parse() -> None:
    msg = CropMessage.model_validate({"job_id": "j", "item_id": 0, "bucket": "b", "key": "uploads/x.zip",
                                      "etag": '"e"', "entry": _ENTRY})
    assert msg.entry is not None and msg.source_name == "a.jpg"


def test_output_names_come_from_the_key_or_the_url_path() -> None:
    by_key = CropMessage.model_validate({"job_id": "j", "item_id": 3, "key": "inputs/team/ada.jpg"})
    by_url = CropMessage.model_validate({"job_id": "j", "item_id": 4, "url": "https://x.example/p/grace%20h.png?s=1"})
    assert by_key.source_name == "inputs/team/ada.jpg" and by_url.source_name == "/p/grace h.png"


def test_url_policy_loads_without_playwright() -> None:
    # posterflow.render imports Playwright, which the crop container leaves out.
    script = (
        "import sys; sys.modules['playwright'] = None\n"
        "from posterflow.crop import worker\n"
        "p = worker.url_policy()\n"
        "print(p.check_blocking('http://127.0.0.1:9/photos/a.jpg').allowed,"
        " p.check_blocking('http://127.0.0.1:9/other').allowed,"
        " p.check_blocking('http://169.254.169.254/latest').allowed,"
        " 'posterflow.render' in sys.modules)\n"
    )
    env = {"PYTHONPATH": str(ROOT / "layers" / "core" / "python"), "PATH": "/usr/bin:/bin",
           "POSTERFLOW_PRIVATE_URL_ALLOWLIST": "http://127.0.0.1:9/photos/"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False", "False", "False"]
