"""Face-crop throughput: photos per second with N worker processes (default 2, one per core).

    .venv/bin/python bench/crop.py [--seconds 8] [--workers 2] [--e2e-photos 120] [--no-e2e]

Each worker runs the library's ``crop_photo`` (reduced decode, YuNet at 640 px, 300 x 300
JPEG) in a loop on photos already in memory, all workers starting together and stopping at a
common deadline. Two cases: a 12 MP (4000 x 3000, ~3 MB) JPEG and a 1600 x 1200 JPEG (the
largest of the "<= 1600 px" class). The photos are built at run time from scikit-image's
astronaut (tests/photos.py) with camera-like noise so they decode like real photos.

A third case reads the 12 MP photo out of a (deflated) ZIP entry with ``zipindex.read_entry``
first, as the crop worker does; the archive is in memory, so S3 latency is not included.

End to end: the local cloud (embedded AWS, Lambda runtime, event sources) runs in this
process; a ZIP of ``--e2e-photos`` copies of the 12 MP photo is put under ``uploads/`` and the
clock runs from the moment the ZIP is in S3 until the job is ``completed`` (S3 event → split
queue → splitter → crop queue → crop function instances (``--workers`` of them, threads here)
→ crops in S3 → DynamoDB counters → the finalize workflow: archive, email, webhook).
``e2e_ratio`` is its photos/s over the 12 MP photos/s of the worker processes in the same run.
A small ZIP goes through first so model loading and imports are not timed (Lambda keeps warm
instances too).

The machine is shared: besides wall-clock photos/s the JSON gives CPU ms per photo, the share
of the cores the workers actually got, what the workers would do on idle cores at that CPU
cost, and the load average before and after. The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "layers" / "core" / "python", ROOT / "local", ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

GOAL_12MP = 30.0
GOAL_SMALL = 80.0
GOAL_E2E_RATIO = 0.8
POLL_S = 0.25
STAGES = ("decode_ms", "detect_ms", "crop_ms", "encode_ms", "total_ms")

_photos: dict[str, bytes] = {}
_zip_entries: dict[str, Any] = {}  # case -> the ZipEntry of its one photo, for ZIP cases
_barrier: Any = None


def _ready(_: int) -> None:
    """Blocks until every worker holds one of these tasks, so when ``map`` returns, all
    workers have finished their (slow, on a loaded machine) initialisation."""
    _barrier.wait(timeout=300)


def _photo(case: str) -> bytes:
    """The case's photo bytes; for a ZIP case, range-read and inflated from the archive as the
    crop worker does (the archive is in memory here, so no S3 latency is included)."""
    entry = _zip_entries.get(case)
    if entry is None:
        return _photos[case]
    from posterflow.formats import zipindex

    return zipindex.read_entry(zipindex.BytesRangeReader(_photos[case]), entry)


def _init_worker(photos: dict[str, bytes], barrier: Any) -> None:
    from posterflow.crop import crop_photo
    from posterflow.formats import zipindex

    global _barrier
    _barrier = barrier
    _photos.update(photos)
    for case, data in photos.items():
        if case.endswith("_zip"):
            reader = zipindex.BytesRangeReader(data)
            _zip_entries[case] = next(iter(zipindex.iter_entries(reader, zipindex.open_zip(reader))))
        crop_photo(_photo(case))  # load the model and warm the codecs before the clock starts


def _run(task: tuple[str, float, float]) -> dict[str, Any]:
    """Crop the case's photo from ``start`` until ``deadline`` (time.monotonic, which is one
    system-wide clock on Linux, so all workers share it)."""
    from posterflow.crop import crop_photo

    case, start, deadline = task
    delay = start - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    count = 0
    faces = 0
    sums = dict.fromkeys(("unzip_ms", *STAGES), 0.0)
    cpu_start = time.process_time()
    now = time.monotonic()
    while now < deadline:
        began = time.perf_counter()
        data = _photo(case)
        sums["unzip_ms"] += (time.perf_counter() - began) * 1000
        [result] = crop_photo(data)
        faces += result.face_detected
        for stage in STAGES:
            sums[stage] += getattr(result.timings, stage)
        count += 1
        now = time.monotonic()
    cpu = time.process_time() - cpu_start
    return {"count": count, "faces": faces, "elapsed": now - start, "cpu": cpu, "sums": sums}


def _case(pool: Any, workers: int, case: str, seconds: float) -> dict[str, Any]:
    start = time.monotonic() + 0.2
    runs = pool.map(_run, [(case, start, start + seconds)] * workers)
    count = sum(r["count"] for r in runs)
    rate = sum(r["count"] / r["elapsed"] for r in runs)
    means = {stage: round(sum(r["sums"][stage] for r in runs) / max(1, count), 2) for stage in runs[0]["sums"]}
    cpu_ms = 1000 * sum(r["cpu"] for r in runs) / max(1, count)
    return {
        "photos": count,
        "faces_found": sum(r["faces"] for r in runs),
        "photos_per_s": round(rate, 1),
        # CPU time per photo, and what `workers` uncontended cores would do at that cost: a
        # check on the wall-clock figure when other work shares the machine.
        "cpu_ms_per_photo": round(cpu_ms, 2),
        "photos_per_s_if_cores_idle": round(workers * 1000 / cpu_ms, 1) if count else 0.0,
        "cpu_share": round(sum(r["cpu"] / r["elapsed"] for r in runs) / workers, 2),
        "ms_per_photo_per_worker": means,
    }


def _zip_of_copies(photo: bytes, count: int, stem: str) -> bytes:
    # Level 1: the archive is built at run time, and inflating costs the worker the same at any level.
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for i in range(count):
            zf.writestr(f"{stem}/person-{i:05d}.jpg", photo)
    return out.getvalue()


def _run_zip(bucket: str, key: str, data: bytes, timeout_s: float) -> dict[str, Any]:
    """Put the ZIP under uploads/ and wait for its job to complete; times from "in S3"."""
    from posterflow import aws, jobs

    s3 = aws.client("s3")
    began = time.monotonic()
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    in_s3 = time.monotonic()
    wall_in_s3 = time.time()
    cpu_in_s3 = time.process_time()
    deadline = in_s3 + timeout_s
    job: Any = None
    marks: dict[str, float] = {}  # when the job appeared, its first item landed, its last item landed
    while time.monotonic() < deadline:
        if job is None:
            found, _ = jobs.list_jobs(limit=50)
            job = next((j for j in found if j.metadata.get("upload") == key), None)
            if job is not None:
                marks.setdefault("job_seen_s", time.monotonic() - in_s3)
        else:
            job = jobs.get_job(job.job_id)
            if job.processed:
                marks.setdefault("first_item_s", time.monotonic() - in_s3)
            if job.total and job.processed >= job.total:
                marks.setdefault("all_items_s", time.monotonic() - in_s3)
            if job.is_final:
                break
        # Four looks a second, as a client would poll: every look is a DynamoDB read on the
        # same process and GIL as the pipeline. The end time comes from the job record.
        time.sleep(POLL_S)
    seen_done = time.monotonic()
    cpu_s = time.process_time() - cpu_in_s3
    if job is None or not job.is_final:
        raise RuntimeError(f"the job for {key} did not finish within {timeout_s} s")
    done = in_s3 + _completed_after(job, wall_in_s3, seen_done - in_s3)
    crops = s3.list_objects_v2(Bucket=bucket, Prefix=f"outputs/{job.job_id}/").get("KeyCount", 0)
    faces = sum(1 for i in jobs.iter_items(job.job_id) if i.extra.get("face_detected"))
    return {"job_status": str(job.status), "total": job.total, "succeeded": job.succeeded, "failed": job.failed,
            "faces_found": faces, "crops_in_s3": crops, "upload_s": round(in_s3 - began, 3),
            "e2e_s": round(done - in_s3, 3), "archive": bool(job.archive_key),
            # CPU of this whole process (every function instance, moto, the pollers) until the
            # completion was seen: 2.0 would be both cores busy the whole time.
            "cores_busy": round(cpu_s / max(seen_done - in_s3, 1e-9), 2),
            **{name: round(value, 3) for name, value in marks.items()}}


def _completed_after(job: Any, wall_start: float, seen_s: float) -> float:
    """Seconds from ``wall_start`` (epoch) to the job's recorded completion; the moment it was
    seen (``seen_s``) if the record has no completion time."""
    if not job.completed_at:
        return seen_s
    completed = datetime.fromisoformat(job.completed_at).timestamp()
    return min(seen_s, max(0.0, completed - wall_start))


def _wait_final(job_id: str, began: float, timeout_s: float) -> Any:
    from posterflow import jobs

    while time.monotonic() - began < timeout_s:
        job = jobs.get_job(job_id)
        if job.is_final:
            return job
        time.sleep(POLL_S)
    raise RuntimeError(f"job {job_id} did not finish within {timeout_s} s")


def _run_add_images(api_url: str, bucket: str, photo: bytes, count: int) -> dict[str, Any]:
    """The other entry point: photos already in S3 as objects, queued by POST /api/batch/add-images;
    timed from the request to the job completed."""
    import urllib.request

    from posterflow import aws

    s3 = aws.client("s3")
    keys = [f"bench/photos/person-{i:05d}.jpg" for i in range(count)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=photo)
    began = time.monotonic()
    request = urllib.request.Request(f"{api_url}/api/batch/add-images", method="POST",
                                     data=json.dumps({"images": keys}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        batch_id = json.loads(response.read())["batchId"]
    wall_began = time.time() - (time.monotonic() - began)
    job = _wait_final(batch_id, began, timeout_s=900)
    elapsed = _completed_after(job, wall_began, time.monotonic() - began)
    return {"job_status": str(job.status), "succeeded": job.succeeded, "e2e_s": round(elapsed, 3),
            "photos_per_s": round(count / elapsed, 1)}


def _range_get_ms(bucket: str, key: str, length: int = 3 * 1024 * 1024, repeat: int = 3) -> float:
    """What one ranged GET of a photo-sized slice of the ZIP costs on the embedded S3."""
    from posterflow import aws

    s3 = aws.client("s3")
    began = time.perf_counter()
    for _ in range(repeat):
        s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=1000-{1000 + length - 1}")["Body"].read()
    return round((time.perf_counter() - began) * 1000 / repeat, 1)


def _e2e(photo: bytes, count: int, workers: int) -> dict[str, Any]:
    """ZIP in S3 → crops in S3 → job completed, on the local cloud in this process."""
    import logging

    import photos

    from posterflow_local.cloud import CloudOptions, LocalCloud

    # Per-request logs of the embedded services would cost the pipeline CPU and flood stderr.
    logging.getLogger().setLevel(logging.WARNING)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    out = Path(tempfile.mkdtemp(prefix="pf-bench-crop-"))
    built = time.monotonic()
    big = _zip_of_copies(photo, count, "people")
    warm = _zip_of_copies(photos.photo_small(), 4 * workers, "warm")
    build_s = time.monotonic() - built
    options = CloudOptions(aws_port=0, api_port=0, ws_port=0, out_dir=out, function_logs=out / "logs",
                           concurrency={"crop": workers})
    with LocalCloud(options) as cloud:
        assert cloud.refs is not None
        bucket = cloud.refs.bucket
        warmup = _run_zip(bucket, "uploads/bench-warmup.zip", warm, timeout_s=300)
        run = _run_zip(bucket, "uploads/bench-e2e.zip", big, timeout_s=900)
        range_ms = _range_get_ms(bucket, "uploads/bench-e2e.zip")
        small_range_ms = _range_get_ms(bucket, "uploads/bench-warmup.zip", length=len(warm) // 2)
        zip_bytes = len(big)
        del big  # 360 MB that the add-images run has no use for
        add_images = _run_add_images(cloud.gateway.rest_url, bucket, photo, count)
    return {**run, "photos": count, "zip_bytes": zip_bytes,
            "photos_per_s": round(count / run["e2e_s"], 1), "crop_instances": workers,
            "warmup_e2e_s": warmup["e2e_s"], "zip_build_s": round(build_s, 2),
            # The embedded S3 (moto) copies the whole object for every ranged GET, so a worker's
            # read of one photo costs in proportion to the ZIP's size there, not on AWS.
            "range_get_ms_big_zip": range_ms, "range_get_ms_small_zip": small_range_ms,
            "add_images": add_images}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring time per case")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2, the cores here)")
    parser.add_argument("--no-zip", action="store_true", help="skip the 12 MP photo read from a ZIP entry")
    parser.add_argument("--e2e-photos", type=int, default=120, help="12 MP photos in the end-to-end ZIP")
    parser.add_argument("--no-e2e", action="store_true", help="skip the end-to-end run on the local cloud")
    args = parser.parse_args()

    import cv2
    import photos
    from PIL import Image

    built = time.monotonic()
    cases = {"12mp": photos.photo_12mp(), "small": photos.photo_small()}
    sizes = {}
    for name, data in cases.items():
        with Image.open(io.BytesIO(data)) as img:
            sizes[name] = {"bytes": len(data), "width": img.size[0], "height": img.size[1]}
    if not args.no_zip:
        # Zip tools deflate JPEGs too (gaining ~1%), so the worker pays for inflating them.
        cases["12mp_zip"] = photos.zip_of([("people/ada.jpg", cases["12mp"])])
    build_s = time.monotonic() - built

    load_before = os.getloadavg()
    ctx = mp.get_context("spawn")  # fresh interpreters: no inherited OpenCV state or threads
    barrier = ctx.Barrier(args.workers)
    with ctx.Pool(args.workers, initializer=_init_worker, initargs=(cases, barrier)) as pool:
        pool.map(_ready, range(args.workers), chunksize=1)
        results = {name: _case(pool, args.workers, name, args.seconds) for name in cases}
    load_after = os.getloadavg()
    e2e = None if args.no_e2e else _e2e(cases["12mp"], args.e2e_photos, args.workers)
    load_after_e2e = os.getloadavg()

    for name, result in results.items():
        print(
            f"{name:>6}: {result['photos_per_s']:6.1f} photos/s wall, {result['cpu_ms_per_photo']:.1f} CPU ms/photo, "
            f"CPU share {result['cpu_share']:.0%}, stages {result['ms_per_photo_per_worker']}",
            file=sys.stderr,
        )

    if e2e is not None:
        print(f"   e2e: {e2e['photos_per_s']:6.1f} photos/s ({e2e['photos']} x 12 MP in {e2e['e2e_s']} s, "
              f"job {e2e['job_status']}, {e2e['crops_in_s3']} crops in S3; a 3 MB ranged GET of the ZIP "
              f"took {e2e['range_get_ms_big_zip']} ms); add-images: {e2e['add_images']['photos_per_s']} photos/s",
              file=sys.stderr)

    per_12mp = results["12mp"]["photos_per_s"]
    per_small = results["small"]["photos_per_s"]
    e2e_ratio = round(e2e["photos_per_s"] / per_12mp, 2) if e2e is not None and per_12mp else None
    summary = {
        "photos_per_s_12mp": per_12mp,
        "photos_per_s_small": per_small,
        "e2e_ratio": e2e_ratio,
        "e2e_photos_per_s": e2e["photos_per_s"] if e2e is not None else None,
        # Same pipeline from photos already in S3 as objects (no ranged reads of a large ZIP).
        "e2e_ratio_add_images": (round(e2e["add_images"]["photos_per_s"] / per_12mp, 2)
                                 if e2e is not None and per_12mp else None),
        # Against workers that also inflate each photo out of a deflated ZIP entry (in memory): the
        # same per-photo work as the crop function, without the cloud around it.
        "e2e_ratio_vs_zip_read": (round(e2e["photos_per_s"] / results["12mp_zip"]["photos_per_s"], 2)
                                  if e2e is not None and "12mp_zip" in results else None),
        # The other reading of the goal: the end-to-end rate against the 30/s 12 MP target itself.
        "e2e_ratio_vs_goal_rate": (round(e2e["photos_per_s"] / GOAL_12MP, 2) if e2e is not None else None),
        "e2e_goal_ratio": GOAL_E2E_RATIO,
        "e2e_goal_met": e2e_ratio is not None and e2e_ratio >= GOAL_E2E_RATIO,
        "e2e": e2e,
        "goal_12mp": GOAL_12MP,
        "goal_small": GOAL_SMALL,
        "goal_12mp_met": per_12mp >= GOAL_12MP,
        "goal_small_met": per_small >= GOAL_SMALL,
        "workers": args.workers,
        "seconds_per_case": args.seconds,
        "photos_per_s_12mp_from_zip": results["12mp_zip"]["photos_per_s"] if "12mp_zip" in results else None,
        "cases": results,
        "photos": sizes,
        "photo_build_s": round(build_s, 2),
        "cpu_count": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "loadavg_after_e2e": [round(x, 2) for x in load_after_e2e],
        "opencv": cv2.__version__,
        "python": platform.python_version(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
