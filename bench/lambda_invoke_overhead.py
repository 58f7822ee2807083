"""Per-invocation cost of the local Lambda runtime itself: a no-op handler invoked in a loop,
from one thread and from several at once (no AWS, no event source). Prints one JSON line.

    .venv/bin/python bench/lambda_invoke_overhead.py [--calls 200000] [--threads 4] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from typing import Any

from posterflow_local.lambda_runtime import LocalFunction


def _noop(event: Any, context: Any) -> Any:
    return event


def _run(fn: LocalFunction, calls: int, threads: int) -> float:
    """Microseconds per invocation, wall clock, ``calls`` spread over ``threads``."""
    per_thread = calls // threads

    def worker() -> None:
        for _ in range(per_thread):
            fn.invoke(None)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return (time.perf_counter() - started) / (per_thread * threads) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    fn = LocalFunction(name="bench-noop", memory_mb=128, timeout_s=30, concurrency=args.threads,
                       environment={}, load=lambda: _noop)
    fn.invoke(None)  # create the first instance outside the measurement
    single = [_run(fn, args.calls, 1) for _ in range(args.repeat)]
    multi = [_run(fn, args.calls, args.threads) for _ in range(args.repeat)]
    print(json.dumps({
        "us_per_invoke_1_thread": round(statistics.median(single), 2),
        f"us_per_invoke_{args.threads}_threads": round(statistics.median(multi), 2),
        "min_1_thread": round(min(single), 2),
        f"min_{args.threads}_threads": round(min(multi), 2),
    }))


if __name__ == "__main__":
    main()
