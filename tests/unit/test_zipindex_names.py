"""Entry names become safe, distinct S3 key parts."""

from __future__ import annotations

import re
import unicodedata

import photos
import pytest

from posterflow.formats import zipindex as z

_SAFE = re.compile(r"^\d{7}-[\w.-]+$")


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("team/alice.jpg", "alice"),
        ("../evil.jpg", "evil"),
        ("../../etc/passwd.png", "passwd"),
        ("/abs/root.jpg", "root"),
        ("C:\\Users\\bob\\me.jpg", "me"),
        ("C:me.jpg", "me"),
        ("..\\..\\win.jpg", "win"),
        ("José Ñandú.JPG", "José_Ñandú"),
        ("Jose\u0301.jpg", "José"),  # decomposed accent is composed (NFKC)
        ("ｆｕｌｌ.jpg", "full"),  # fullwidth letters fold to ASCII
        ("evil\u202egpj.png", "evilgpj"),  # bidi override removed
        ("zero\u200bwidth.jpg", "zerowidth"),
        ("tab\there.jpg", "tabhere"),
        ("a b?c*d:e.jpg", "a_b_c_d_e"),
        ("..jpg", "jpg"),
        ("???.jpg", "photo"),
        ("/", "photo"),
        ("名前.jpg", "名前"),
        ("a..b...c.jpg", "a.b.c"),
        ("e\u200b\u0301.jpg", "é"),  # a removed zero-width space between letter and accent
    ],
)
def test_entry_stem(name: str, stem: str) -> None:
    assert z.entry_stem(name) == stem


@pytest.mark.parametrize(
    "name",
    ["../evil.jpg", "/abs/root.jpg", "a/../../b.jpg", "x\u202ey.jpg", "\x00\x01.jpg", "." * 300 + ".jpg", "a" * 5000],
)
def test_safe_output_name_never_escapes(name: str) -> None:
    out = z.safe_output_name(name, 42)
    assert out.startswith("0000042-")
    assert "/" not in out and "\\" not in out and ".." not in out
    assert _SAFE.match(out), out
    assert len(out.encode("utf-8")) <= 8 + 4 * 80
    assert unicodedata.is_normalized("NFKC", out)


def test_duplicate_names_get_distinct_outputs() -> None:
    data = photos.junk_and_photos_zip(b"\xff\xd8")
    reader = z.BytesRangeReader(data)
    entries = [e for e in z.iter_entries(reader, z.open_zip(reader)) if e.verdict is z.Verdict.IMAGE]
    dups = [e for e in entries if e.name.endswith("dup.jpg")]
    assert len(dups) == 2
    names = [z.safe_output_name(e.name, e.index) for e in entries]
    assert len(set(names)) == len(names)
    assert {z.entry_stem(e.name) for e in dups} == {"dup"}


def test_output_name_is_deterministic() -> None:
    assert z.safe_output_name("a/b.jpg", 7) == z.safe_output_name("a/b.jpg", 7) == "0000007-b"
    with pytest.raises(ValueError):
        z.safe_output_name("a.jpg", -1)
