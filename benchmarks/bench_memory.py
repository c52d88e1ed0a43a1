"""Peak memory of `trialstruct run` as the input grows: a registry-sized run must not need more.

    python benchmarks/bench_memory.py [--scales 1 10 100] [--backend none]

For each scale k, HINT's 3,686 trials are written k times into one JSONL file with unique ids
(`NCT…-r0042`), then `trialstruct run` processes it in a child process whose peak resident set
(ru_maxrss, worker processes included as their own peak) is read when it exits. The backend
defaults to `none` (segmentation only), so the large scales finish in minutes: what is measured is
the runner and the readers, whose memory must not grow with the input (targets: 10x <= 1.3 x the
1x peak, 100x <= 1.5x).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "hint" / "hint-trials.jsonl"


def scaled_copy(source: Path, scale: int, target: Path) -> int:
    """Write `scale` copies of the JSONL `source` with unique ids, a row at a time; returns the
    number of rows. (This process must stay small: see `peak_rss_mb`.)"""
    rows = 0
    with target.open("w", encoding="utf-8") as out:
        for copy in range(scale):
            with source.open(encoding="utf-8") as lines:
                for line in filter(str.strip, lines):
                    row = json.loads(line)
                    out.write(json.dumps({**row, "nct_id": f"{row['nct_id']}-r{copy:04d}"}, ensure_ascii=False) + "\n")
                    rows += 1
    return rows


def peak_rss_mb(args: list[str]) -> tuple[float, float, int]:
    """(peak RSS in MB of the largest process, wall seconds, exit status) of one run.

    Linux counts the parent's own peak in a child started by vfork + exec (as subprocess does),
    so this process keeps itself small (`scaled_copy` streams) to measure the run, not itself.
    """
    started = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024, time.perf_counter() - started, child.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--backend", default="none")
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(f"SKIP: {args.source} not found (the HINT file of ../shared/data is needed)")
        return 0
    print(f"{'scale':>6} {'documents':>10} {'input MB':>9} {'peak RSS MB':>12} {'vs 1x':>6} {'seconds':>8}")
    first = None
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as scratch:
        for scale in args.scales:
            data = Path(scratch) / f"hint-x{scale}.jsonl"
            documents = scaled_copy(args.source, scale, data)
            out = Path(scratch) / f"out-x{scale}"
            command = [sys.executable, "-m", "pipeline", "run", str(data), "-o", str(out), "--backend", args.backend,
                       "--max-bytes", str(data.stat().st_size + 1)]
            peak, seconds, status = peak_rss_mb(command)
            if status != 0:
                print(f"run failed at scale {scale} (exit {status}): {' '.join(command)}")
                return 1
            first = first or peak
            print(f"{scale:>6} {documents:>10,} {data.stat().st_size / 1e6:>9.0f} {peak:>12.0f} "
                  f"{peak / first:>5.2f}x {seconds:>8.1f}")
            data.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
