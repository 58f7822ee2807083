"""The crop keeps its large per-photo buffers in the C heap: glibc's malloc thresholds are set
once per process, on the first crop (measured effect: bench/crop.py, README)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import subprocess
import sys
import textwrap

import pytest

from posterflow.crop import heap


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_the_thresholds_are_set_once_on_the_first_crop() -> None:
    # A fresh interpreter, so this process's earlier crops do not hide the first call.
    probe = textwrap.dedent(
        """
        import photos
        from posterflow.crop import crop_photo, heap
        assert heap.keep_buffers_in_heap.cache_info().currsize == 0
        crop_photo(photos.jpeg())
        info = heap.keep_buffers_in_heap.cache_info()
        assert info.currsize == 1 and heap.keep_buffers_in_heap() is True
        print("ok")
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env,
                         check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_the_values_are_ones_glibc_accepts() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    assert libc.mallopt(heap.M_MMAP_THRESHOLD, heap.MMAP_THRESHOLD) == 1
    assert libc.mallopt(heap.M_TRIM_THRESHOLD, heap.TRIM_THRESHOLD) == 1
