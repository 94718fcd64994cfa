"""Rows per second of the streamed Parquet build with 1 worker vs W workers, side by side in one
run, and the peak memory of each (parent + largest worker x W). The shards are byte-identical.

    python benchmarks/bench_data_scale.py [--count 100000] [--workers 2] [--levels 3-4]
"""

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ONE_BUILD = """
import json, resource, sys, time
from r1kit import data, shards

if __name__ == "__main__":
    out, count, workers, levels = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    start = time.perf_counter()
    shards.build("arithmetic", data.parse_levels(levels), count, out, style="compact", workers=workers)
    seconds = time.perf_counter() - start
    peak = lambda who: resource.getrusage(who).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "parent_mb": peak(resource.RUSAGE_SELF), "worker_mb": peak(resource.RUSAGE_CHILDREN)}))
"""


def build(out: Path, count: int, workers: int, levels: str) -> dict:
    run = subprocess.run([sys.executable, "-c", ONE_BUILD, str(out), str(count), str(workers), levels],
                         capture_output=True, text=True, check=True)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    result["digest"] = hashlib.sha256(b"".join(p.read_bytes() for p in sorted((out / "data").iterdir()))).hexdigest()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--levels", default="3-4")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {w: build(Path(tmp) / f"w{w}", args.count, w, args.levels) for w in (1, args.workers)}
    for w, r in results.items():
        total = r["parent_mb"] + w * r["worker_mb"] if w > 1 else r["parent_mb"]
        print(f"workers={w}: {args.count / r['seconds']:,.0f} rows/s, peak RSS <= {total:,.0f} MB "
              f"(parent {r['parent_mb']:,.0f} MB, largest worker {r['worker_mb']:,.0f} MB)")
    one, many = results[1], results[args.workers]
    print(f"speed-up with {args.workers} workers: {one['seconds'] / many['seconds']:.2f}x; "
          f"identical shards: {one['digest'] == many['digest']}")


if __name__ == "__main__":
    main()
