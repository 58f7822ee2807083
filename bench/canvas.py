"""Fabric.js canvas posters against comparable HTML posters, in the same run on the same engine.

The HTML poster is ``bench/render.py``'s (1080² testimonial: a band, a title, a quote, a
round photo, a name, a rating); the canvas is the same design as a Fabric 6 canvas (rects,
textboxes, an image clipped to a circle, the quote with a fit rule), filled per item with the
same values. Both go through one warm :class:`~posterflow.render.engine.RenderEngine` (its
pages are pooled per kind), phases interleaved over ``--rounds`` rounds; the best round is
reported with the median beside it (the machine is shared). Goal: canvas ≥ 0.6 × HTML (PNG).

``*_pdf_per_s``: the same designs as print PDFs (postcard-6x4; the canvas through Fabric's SVG
export, text as vector). With ``--merged-pages N`` (default 500; 0 skips it) the figures of
``bench/merged_pdf.py``'s ``measure(N)`` (one merged PDF of N postcards, as finalize writes
it) are included under ``merged_pdf``.

``peak_rss_mb``/``peak_pss_mb``: this process and Chromium's whole process tree, sampled every
50 ms, with both kinds of page pooled (up to ``--pages`` of each).

``*_png_ms_sequential``: the median milliseconds of one poster rendered alone (``--sequential``
of each kind, one at a time), what a poster costs without parallel pages competing for the cores.

Prints one JSON object per phase and round; the last line is the summary.

    .venv/bin/python bench/canvas.py [--count 60] [--rounds 3] [--pages 4] [--sequential 20] [--merged-pages 500]
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from posterflow.posters.canvas.spec import CanvasOutput, CanvasResult, FilledCanvas, FitRule, ImageFit
from posterflow.render.canvas import CanvasRenderer
from posterflow.render.engine import EngineConfig, RenderEngine, RenderRequest, RenderResult
from posterflow.render.sizes import resolve_size

HERE = Path(__file__).resolve().parent


def _load(name: str) -> ModuleType:
    """A sibling benchmark as a top-level module (so its multiprocessing children import it too)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return importlib.import_module(name)


render_bench = _load("render")

FONT = "DejaVu Sans"


def _text(kind: str, left: int, top: int, width: int, height: int, size: int, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "version": "6.9.1", "left": left, "top": top, "width": width, "height": height,
            "fontSize": size, "fontFamily": FONT, "fill": "#1d1d1f", "text": "", "styles": [], **extra}


def canvas_template(photo: str) -> dict[str, Any]:
    """The HTML poster's design as Fabric 6 JSON (1080 × 1080)."""
    return {
        "version": "6.9.1",
        "background": "#f4efe6",
        "objects": [
            {"type": "Rect", "left": 0, "top": 0, "width": 1080, "height": 260, "fill": "#1f3a5f", "strokeWidth": 0},
            _text("Textbox", 80, 70, 1000, 90, 72, fill="#ffffff", fontWeight="bold"),
            _text("Textbox", 80, 330, 920, 360, 44, lineHeight=1.35),
            {"type": "Circle", "left": 72, "top": 812, "radius": 108, "fill": "#ffffff", "strokeWidth": 0},
            {"type": "Image", "left": 80, "top": 820, "width": 200, "height": 200, "src": photo, "cropX": 0,
             "cropY": 0, "clipPath": {"type": "Circle", "radius": 100, "left": -100, "top": -100, "strokeWidth": 0}},
            _text("Textbox", 320, 913, 700, 50, 40, fontWeight="bold"),
            _text("Text", 320, 970, 400, 45, 34, fill="#b8860b"),
        ],
    }


def _canvases(count: int, template: dict[str, Any], output: CanvasOutput) -> list[FilledCanvas]:
    items = []
    for i in range(count):
        data = copy.deepcopy(template)
        objects = data["objects"]
        objects[1]["text"] = "What our customers say"
        objects[2]["text"] = f"“Customer number {i} found the mentoring session incredibly helpful.” 🎉"
        objects[5]["text"] = f"Customer {i}"
        objects[6]["text"] = f"★ {4 + i % 2} / 5"
        items.append(FilledCanvas(canvas_json=data, width=1080, height=1080, output=output,
                                  fit=[FitRule(index=2, min_scale=0.5)], images=[ImageFit(index=4)]))
    return items


def _html(count: int, fmt: str, photo: str) -> list[RenderRequest]:
    requests: list[RenderRequest] = render_bench._requests(count, fmt, photo)
    if fmt == "pdf":
        size = resolve_size("postcard-6x4")
        requests = [r.model_copy(update={"size": size}) for r in requests]
    return requests


def _timed_html(engine: RenderEngine, requests: list[RenderRequest]) -> tuple[float, float]:
    started = time.perf_counter()
    results = engine.render_many(requests)
    elapsed = time.perf_counter() - started
    ok = [r for r in results if isinstance(r, RenderResult)]
    if len(ok) != len(results):
        raise SystemExit(f"HTML renders failed: {[str(r) for r in results if not isinstance(r, RenderResult)][:3]}")
    return len(ok) / elapsed, sum(len(r.data) for r in ok) / len(ok) / 1024


def _timed_canvas(renderer: CanvasRenderer, canvases: list[FilledCanvas]) -> tuple[float, float]:
    started = time.perf_counter()
    results = renderer.render_canvases(canvases)
    elapsed = time.perf_counter() - started
    ok = [r for r in results if isinstance(r, CanvasResult)]
    if len(ok) != len(results):
        raise SystemExit(f"canvas renders failed: {[repr(r) for r in results if isinstance(r, Exception)][:3]}")
    return len(ok) / elapsed, sum(len(r.data) for r in ok) / len(ok) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=60, help="posters per phase and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pages", type=int, default=4, help="pages rendering in parallel")
    parser.add_argument("--sequential", type=int, default=20, help="posters of each kind rendered one at a time")
    parser.add_argument("--merged-pages", type=int, default=500, help="bench/merged_pdf.py's measure(N); 0 skips")
    args = parser.parse_args()

    photo = render_bench._photo()
    template = canvas_template(photo)
    png, pdf = CanvasOutput(format="png"), CanvasOutput(format="pdf", size="postcard-6x4")
    summary: dict[str, Any] = {"count": args.count, "pages": args.pages, "rounds": args.rounds, "cpus": os.cpu_count()}
    rates: dict[str, list[float]] = {"html_png": [], "canvas_png": [], "html_pdf": [], "canvas_pdf": []}
    sizes: dict[str, float] = {}
    sampler = render_bench.MemorySampler()
    sampler.start()
    with RenderEngine(EngineConfig(pages=args.pages)) as engine:
        renderer = CanvasRenderer(engine)
        # Warm both kinds of page (one per slot), as a warm render function has them.
        _timed_html(engine, _html(args.pages * 2, "png", photo))
        _timed_canvas(renderer, _canvases(args.pages * 2, template, png))
        for round_no in range(args.rounds):
            for phase in rates:
                kind, fmt = phase.split("_")
                if kind == "html":
                    rate, kb = _timed_html(engine, _html(args.count, fmt, photo))
                else:
                    rate, kb = _timed_canvas(renderer, _canvases(args.count, template, png if fmt == "png" else pdf))
                rates[phase].append(round(rate, 1))
                sizes[phase] = round(kb, 1)
                print(json.dumps({"phase": phase, "round": round_no, "per_s": round(rate, 1), "mean_kb": sizes[phase]}))
        # One at a time (no parallel pages competing for the cores): milliseconds per poster.
        for kind in ("html", "canvas"):
            times = []
            for i in range(args.sequential):
                started = time.perf_counter()
                if kind == "html":
                    engine.render(_html(1, "png", photo)[0])
                else:
                    renderer.render_canvas(_canvases(1, template, png)[0], request_id=str(i))
                times.append((time.perf_counter() - started) * 1000)
            if times:
                summary[f"{kind}_png_ms_sequential"] = round(statistics.median(times), 1)
        summary["engine"] = {"launches": engine.stats.launches, "renders": engine.stats.renders}
    sampler.stop()
    # This process and the whole Chromium tree, with both kinds of page pooled (RSS counts
    # shared pages once per process; PSS shares them out).
    summary["peak_rss_mb"] = round(sampler.peak_rss_kb / 1024, 1)
    summary["peak_pss_mb"] = round(sampler.peak_pss_kb / 1024, 1)
    for phase, values in rates.items():
        summary[f"{phase}_per_s"] = max(values)
        summary[f"{phase}_per_s_median"] = statistics.median(values)
        summary[f"{phase}_mean_kb"] = sizes[phase]
    for fmt in ("png", "pdf"):
        summary[f"{fmt}_ratio"] = round(summary[f"canvas_{fmt}_per_s"] / summary[f"html_{fmt}_per_s"], 2)
        # Round by round (the same load on both phases of a round), the median of those ratios.
        per_round = [c / h for c, h in zip(rates[f"canvas_{fmt}"], rates[f"html_{fmt}"], strict=True)]
        summary[f"{fmt}_ratio_median"] = round(statistics.median(per_round), 2)
    summary["goal_png_ratio"] = 0.6
    summary["goal_met"] = summary["png_ratio"] >= 0.6
    summary["load_avg_1m"] = round(os.getloadavg()[0], 2)
    if args.merged_pages > 0 and (HERE / "merged_pdf.py").exists():
        summary["merged_pdf"] = _load("merged_pdf").measure(args.merged_pages)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
