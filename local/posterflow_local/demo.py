"""``posterflow demo``: the main job end to end on the local cloud.

Boots the local cloud, uploads the sample template, submits the 200-row speakers CSV as a
poster batch through the REST API (as the Django backend would), follows its progress, and
writes the posters and a summary under ``./out``. Then a small direct-mail run (seed 002): the
Fabric.js postcard template, a dozen recipients with multi-line addresses, QR codes and photos,
rendered as print PDFs and merged into one mailing PDF.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from posterflow import resources as r

EVENTS = r.REPO_ROOT / "events"
TEMPLATE = EVENTS / "templates" / "speaker.html"
SPEAKERS = EVENTS / "inputs" / "speakers.csv"
POSTCARD = EVENTS / "templates" / "postcard.fabric6.json"
RECIPIENTS = EVENTS / "inputs" / "recipients.csv"

def _call(base: str, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{base}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        return [{k.strip().lower(): v for k, v in row.items()} for row in csv.DictReader(f)]


def headshots_zip() -> bytes:
    """A ZIP of headshots built from the face photos that ship with scikit-image (no download):
    a few crops and mirror images of each, plus the junk a real camera-roll ZIP carries."""
    import io
    import zipfile

    from PIL import Image, ImageOps
    from skimage import data

    faces = [Image.fromarray(data.astronaut()), Image.fromarray(data.camera()).convert("RGB")]
    shots: list[Image.Image] = []
    for face in faces:
        w, h = face.size
        shots += [face, ImageOps.mirror(face), face.crop((0, 0, int(w * 0.8), int(h * 0.8))),
                  face.resize((w * 2, h * 2))]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, shot in enumerate(shots):
            out = io.BytesIO()
            shot.save(out, "JPEG", quality=90)
            zf.writestr(f"headshots/speaker-{i + 1:02d}.jpg", out.getvalue())
        zf.writestr("__MACOSX/headshots/._speaker-01.jpg", b"\0\5\26\7")
        zf.writestr("headshots/README.txt", "not a photo")
    return buf.getvalue()


def _wait_for_upload_job(upload_key: str, timeout: float = 120) -> Any:
    from posterflow import jobs

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found, _ = jobs.list_jobs(limit=50)
        job = next((j for j in found if j.metadata.get("upload") == upload_key), None)
        if job is not None:
            return job
        time.sleep(0.2)
    raise RuntimeError(f"no job appeared for {upload_key} within {timeout:.0f} s")


def _download(base: str, job_id: str, folder: Path, name_of: Any) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    written, cursor = 0, None
    while True:
        query = "?limit=1000" + (f"&cursor={cursor}" if cursor else "")
        page = _call(base, "GET", f"/api/jobs/{job_id}{query}")
        for result in page["results"]:
            if result["url"]:
                suffix = Path(result["url"].split("?")[0]).suffix
                (folder / f"{name_of(result)}{suffix}").write_bytes(
                    urllib.request.urlopen(result["url"], timeout=30).read())
                written += 1
        cursor = page.get("next")
        if not cursor:
            return written


def _postcards(base: str, ws: str, folder: Path, photo_keys: list[str]) -> dict[str, Any]:
    """Seed 002's mailing: the Fabric.js postcard, one print PDF per recipient (postcard-6x4, 3 mm
    bleed), merged into one PDF of the whole mailing by finalize."""
    from posterflow_local.watch import watch

    tpl = _call(base, "POST", "/api/templates/upload", json.loads(POSTCARD.read_text()))
    print(f"3/3 postcards: canvas template {tpl['template_id']} "
          f"({', '.join(p['name'] for p in tpl['placeholders'])})", file=sys.stderr)
    rows = read_rows(RECIPIENTS)
    # Each recipient's photo is one of the face crops (a 1x1 data: URI without them).
    blank = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAAB"
             "JRU5ErkJggg==")
    items = [{**row, "photo": photo_keys[i % len(photo_keys)] if photo_keys else blank} for i, row in enumerate(rows)]
    started = time.perf_counter()
    batch = _call(base, "POST", "/api/generate-batch", {
        "template_id": tpl["template_id"], "items": items, "name": "Spring mailing", "format": "pdf",
        "size": "postcard-6x4", "bleed_mm": 3, "merge_pdf": True})
    job = watch(base, ws, batch["job_id"], batch["token"])
    seconds = time.perf_counter() - started
    written = _download(base, batch["job_id"], folder, lambda r: r["entity_id"])
    merged = None
    status = _call(base, "GET", f"/api/jobs/{batch['job_id']}?limit=1")
    if status.get("merged_pdf_url"):
        merged = folder / "mailing.pdf"
        merged.write_bytes(urllib.request.urlopen(status["merged_pdf_url"], timeout=60).read())
    return {"job_id": batch["job_id"], "status": job["status"], "total": job["total_items"],
            "succeeded": job["success_count"], "failed": job["failure_count"], "written": written,
            "seconds": round(seconds, 2), "merged_pdf": str(merged.resolve()) if merged else None}


def run_demo(args: argparse.Namespace) -> int:
    from posterflow import aws
    from posterflow_local.cloud import CloudOptions, LocalCloud
    from posterflow_local.watch import watch

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    print("posterflow demo: starting the local cloud …", file=sys.stderr)
    t_boot = time.perf_counter()
    logs = out / "logs"
    with LocalCloud(CloudOptions(host=args.host, aws_port=args.aws_port, api_port=args.port,
                                 ws_port=args.ws_port, out_dir=out, function_logs=logs)) as cloud:
        base, ws = cloud.gateway.rest_url, cloud.gateway.ws_url
        print(f"  up in {time.perf_counter() - t_boot:.1f}s — API {base}, dashboard {base}/", file=sys.stderr)
        print(f"  function logs and metrics (as CloudWatch Logs would keep them): {logs}/<function>.log",
              file=sys.stderr)

        # 1. Photos: a ZIP of headshots dropped into S3 → one crop job, one item per photo.
        print("1/3 face crops: dropping headshots.zip into uploads/", file=sys.stderr)
        upload_key = "uploads/headshots.zip"
        started = time.perf_counter()
        aws.client("s3").put_object(Bucket=cloud.refs.bucket if cloud.refs else "", Key=upload_key,
                                    Body=headshots_zip(), Metadata={"notify-email": "organiser@example.com"})
        crop_job = _wait_for_upload_job(upload_key)
        crops = watch(base, ws, crop_job.job_id, crop_job.token)
        crop_s = time.perf_counter() - started
        faces = {r["entity_id"]: r for r in _call(base, "GET", f"/api/jobs/{crop_job.job_id}")["results"]}
        photo_keys = [r["key"] for _, r in sorted(faces.items()) if r["status"] == "completed" and r["key"]]
        n_crops = _download(base, crop_job.job_id, out / "crops", lambda r: Path(r["entity_id"]).stem)

        # 2. Posters: the speakers CSV as one batch through the REST API, as Django would post it;
        #    each speaker's profile photo is one of the face crops.
        tpl = _call(base, "POST", "/api/templates/upload", {
            "section": "speaker", "name": "Conference speaker card", "html_content": TEMPLATE.read_text(),
            "set_as_active": True, "size": "instagram-square", "format": "jpeg"})
        print(f"2/3 posters: template {tpl['template_id']} "
              f"({', '.join(p['name'] for p in tpl['placeholders'])})", file=sys.stderr)
        rows = read_rows(SPEAKERS)
        items = [{**row, "profile_image": photo_keys[i % len(photo_keys)]} if photo_keys else row
                 for i, row in enumerate(rows)]
        started = time.perf_counter()
        batch = _call(base, "POST", "/api/generate-batch", {
            "template_id": "speaker_latest", "items": items, "name": "ServerlessConf speaker cards",
            "notify_email": "organiser@example.com"})
        job = watch(base, ws, batch["job_id"], batch["token"])
        poster_s = time.perf_counter() - started
        n_posters = _download(base, batch["job_id"], out / "posters", lambda r: r["entity_id"])
        mailing = _postcards(base, ws, out / "postcards", photo_keys)
        mail = sorted((out / "mail").glob("*.eml")) if (out / "mail").exists() else []
        summary = {
            "crops": {"job_id": crop_job.job_id, "status": crops["status"], "photos": crops["total_items"],
                      "cropped": crops["success_count"], "skipped": crops.get("skipped_count"),
                      "failed": crops["failure_count"], "seconds": round(crop_s, 2),
                      "per_s": round((crops["total_items"] or 0) / crop_s, 1)},
            "posters": {"job_id": batch["job_id"], "status": job["status"], "total": job["total_items"],
                        "succeeded": job["success_count"], "failed": job["failure_count"],
                        "seconds": round(poster_s, 2), "per_s": round(job["total_items"] / poster_s, 1)},
            "postcards": mailing,
            "files": {"posters": str((out / "posters").resolve()), "crops": str((out / "crops").resolve()),
                      "written": n_posters + n_crops, "mail": [str(m.resolve()) for m in mail],
                      "logs": str(logs.resolve())},
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    ok = (job["status"] in {"completed", "completed_with_errors"} and n_posters == job["success_count"]
          and crops["status"] in {"completed", "completed_with_errors"} and mailing["succeeded"] == mailing["total"])
    return 0 if ok else 1
