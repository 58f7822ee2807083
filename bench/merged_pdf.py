"""Merged print PDF (``merge_pdf`` batches): N item PDFs → merged parts streamed to S3.

The merge (``posterflow.finalize.merge_pdf.merge_part``, the finalize step ``MergePdf``) runs in
this process with real boto3 clients against a minimal S3 endpoint in a child process, as in
``bench/archive.py``: the endpoint serves every item from one real poster PDF (rendered once by
the warm Chromium, an A6 postcard with text and a background, fonts embedded — what a batch's
items look like) and counts, then discards, the uploaded parts, so the figures are the merge's
own (GETs + pypdf + multipart) and not an S3 emulator's memory. ``--verify`` keeps the parts on
disk and reads them back with pypdf (page count of every part).

The job is merged exactly as finalize does it: parts of at most ``--part-pages`` pages (default
``POSTERFLOW_MERGED_PDF_PART_PAGES``), one after the other; peak RSS is this process's.

Prints one JSON object (last line). ``measure(pages)`` returns the same dict, for other benches
(bench/canvas.py) to import.

    .venv/bin/python bench/merged_pdf.py [--pages 2000] [--part-pages N] [--image-kb K] [--verify]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import multiprocessing as mp
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import s3_stub  # bench/s3_stub.py, beside this script
from PIL import Image

BUCKET = "bench-merged-pdf"
_HTML = """<html><head><style>
body{margin:0;font-family:sans-serif;background:linear-gradient(135deg,#1d3557,#457b9d);color:#fff}
.card{padding:36px} h1{font-size:44px;margin:0 0 12px} p{font-size:18px;line-height:1.4}
.addr{position:absolute;right:36px;bottom:36px;background:#fff;color:#111;padding:14px 18px;font-size:16px}
</style></head><body><div class="card"><h1>Hello, Ada Lovelace</h1>
<p>Your spring offer: 20% off every print order this month. Bring this card to any store.</p></div>
<div class="addr">Ada Lovelace<br>12 Analytical Row<br>London NW1 6XE</div></body></html>"""


def sample_pdf(image_kb: int = 0) -> bytes:
    """One poster PDF from the warm Chromium (postcard 6x4 in, like a direct-mail item);
    ``image_kb`` adds a photo of about that many kB of incompressible pixels."""
    from posterflow.render import engine, sizes

    html = _HTML
    if image_kb:
        side = max(8, int((image_kb * 1024 / 3) ** 0.5))
        png = io.BytesIO()
        Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(png, "PNG", compress_level=1)
        photo = base64.b64encode(png.getvalue()).decode()
        html = html.replace("</body>", f'<img style="position:absolute;left:36px;bottom:36px;width:160px" '
                                        f'src="data:image/png;base64,{photo}"></body>')
    with engine.RenderEngine() as eng:
        result = eng.render(engine.RenderRequest(html=html, format="pdf", size=sizes.resolve_size("postcard-6x4")))
    return result.data


def _render_sample(out: Any, image_kb: int) -> None:
    out.put(sample_pdf(image_kb))


def measure(pages: int, *, part_pages: int | None = None, image_kb: int = 0, verify: bool = False) -> dict[str, Any]:
    """Merge a job of ``pages`` one-page items as finalize does; figures as a dict."""
    ctx = mp.get_context("spawn")
    results: Any = ctx.Queue()
    # Chromium outside this process, so peak RSS is the merge's.
    renderer = ctx.Process(target=_render_sample, args=(results, image_kb), daemon=True)
    renderer.start()
    payload: bytes = results.get(timeout=120)
    renderer.join(30)

    sink = tempfile.mkdtemp(prefix="pf-bench-merge-") if verify else None
    ports: Any = ctx.Queue()
    server = ctx.Process(target=s3_stub.serve, args=(ports, payload, "application/pdf", sink), daemon=True)
    server.start()
    port = ports.get(timeout=30)
    saved = dict(os.environ)
    from posterflow import aws

    aws.reset_clients()  # clients made before would keep their endpoint
    os.environ.update({
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
        "POSTERFLOW_BUCKET": BUCKET, "POSTERFLOW_TABLE": "unused",
    })
    try:
        from posterflow import config, jobs
        from posterflow.finalize import merge_pdf

        limit = part_pages or config.merged_pdf_part_pages()
        now = "2025-01-01T00:00:00.000000Z"

        def items(start: int) -> Any:
            for i in range(start, pages):
                yield jobs.Item(job_id="bench", item_id=i, entity_id=f"entity-{i}", status=jobs.ItemStatus.SUCCEEDED,
                                output_key=f"outputs/bench/bench/{i:06d}.pdf", attempts=1, created_at=now,
                                updated_at=now, finished_at=now)

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        parts: list[dict[str, Any]] = []
        start: int | None = 0
        while start is not None:
            result = merge_pdf.merge_part(items(start), f"archives/bench/bench/merged-{len(parts) + 1:03d}.pdf",
                                          part=len(parts) + 1, max_pages=limit)
            if result.part is not None:
                parts.append(result.part.as_dict())
            start = result.next_item
        elapsed = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        server.terminate()
        os.environ.clear()
        os.environ.update(saved)
        aws.reset_clients()  # the caller's clients get its own endpoint again

    verified = None
    if sink:
        from pypdf import PdfReader

        counts = []
        for n in range(1, len(parts) + 1):
            files = sorted(Path(sink).glob(f"u{n}-*.part"))
            path = Path(sink, f"part-{n}.pdf")
            with path.open("wb") as out:
                for f in files:
                    out.write(f.read_bytes())
                    f.unlink()
            counts.append(len(PdfReader(path).pages))
            path.unlink()
        verified = counts == [p["pages"] for p in parts] and sum(counts) == pages

    merged_mb = sum(p["bytes"] for p in parts) / 1e6
    return {
        "benchmark": "merged_pdf",
        "pages": pages,
        "part_pages": limit,
        "parts": len(parts),
        "item_pdf_kb": round(len(payload) / 1024, 1),
        "merged_mb": round(merged_mb, 1),
        "largest_part_mb": round(max((p["bytes"] for p in parts), default=0) / 1e6, 1),
        "seconds": round(elapsed, 2),
        "slowest_part_s": round(max((p["seconds"] for p in parts), default=0.0), 2),
        "pages_per_s": round(pages / elapsed, 1) if elapsed else None,
        "rss_before_mb": round(rss_before, 1),
        "peak_rss_mb": round(peak, 1),
        "verified": verified,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--part-pages", type=int, default=None)
    ap.add_argument("--image-kb", type=int, default=0, help="add a photo of about this many kB to every item")
    ap.add_argument("--verify", action="store_true", help="keep the parts on disk and count their pages with pypdf")
    args = ap.parse_args()
    print(json.dumps(measure(args.pages, part_pages=args.part_pages, image_kb=args.image_kb, verify=args.verify)))


if __name__ == "__main__":
    main()
