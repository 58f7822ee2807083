"""Reliability figures at soak size: a poster batch with 5% poison items, one render instance
killed mid-batch and one poller batch dropped, then a batch under 5% S3/DynamoDB errors (2%
SQS). Prints one JSON line per scenario (items, lost, double-counted, redelivered, faults,
wall time); ``make soak`` runs the same scenarios as tests.

    .venv/bin/python bench/reliability.py [--items 10000] [--error-items 2000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from posterflow_local.cloud import CloudOptions, LocalCloud
from posterflow_local.faults import FaultConfig
from tests.reliability.scenario import run_batch
from tests.reliability.test_reliability_faults import ERRORS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--error-items", type=int, default=2_000)
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="pf-reliability-"))
    with LocalCloud(CloudOptions(aws_port=0, api_port=0, ws_port=0, out_dir=out, function_logs=out / "logs")) as cloud:
        audit, _ = run_batch(cloud, scenario=f"batch-{args.items}-poison-kill", n=args.items, poison_every=20,
                             fault=FaultConfig(redelivery_s=2), kill_after_items=args.items // 4, drop_batches=1,
                             timeout=7200)
        problems = audit.problems()
        if args.error_items:
            audit, _ = run_batch(cloud, scenario=f"batch-{args.error_items}-aws-errors", n=args.error_items,
                                 poison_every=20, fault=ERRORS, timeout=7200)
            problems += audit.problems()
    if problems:
        sys.exit("; ".join(problems))


if __name__ == "__main__":
    main()
