"""What `trialstruct run` costs on top of the work, and what worker processes buy.

    python benchmarks/bench_run.py [INPUT] [--repeat 3] [--workers 2]

Three ways over the same documents (default: HINT's 3,686 trials), run alternately in one
process so machine noise hits them alike, best of `--repeat`:
- work: ingest, segment and extract in a loop, records serialised and dropped (no runner);
- run, 1 worker: `pipeline.run.run` end to end (journal, ordered outputs, manifest);
- run, N workers: the same with `--workers N` processes.
It prints seconds and docs/s of each, the runner's overhead (run with 1 worker / work; target
<= 1.2) and the speed-up of N workers (target >= 1.8 on 2 idle cores). Absolute numbers do not
carry between machines; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from pipeline.config import RunConfig
from pipeline.extract import load_backend
from pipeline.ingest import Document, iter_documents
from pipeline.run import run
from pipeline.segment import segment

DEFAULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "hint" / "hint-trials.jsonl"


def work_only(path: Path) -> int:
    backend = load_backend(RunConfig(backend="rules"))
    done = 0
    for document in iter_documents([path]):
        if isinstance(document, Document):
            backend.extract(segment(document)).record.model_dump_json()
            done += 1
    return done


def run_once(path: Path, workers: int) -> int:
    out = Path(tempfile.mkdtemp(prefix="bench-run-"))
    try:
        return run([path], out, RunConfig(backend="rules", workers=workers)).counts.records
    finally:
        shutil.rmtree(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if not args.path.exists():
        print(f"SKIP: {args.path} not found (the HINT file of ../shared/data is needed)")
        return 0
    ways = {
        "work (segment + extract)": lambda: work_only(args.path),
        "run, 1 worker": lambda: run_once(args.path, 1),
        f"run, {args.workers} workers": lambda: run_once(args.path, args.workers),
    }
    best = {name: float("inf") for name in ways}
    documents = 0
    for _ in range(args.repeat):
        for name, way in ways.items():
            started = time.perf_counter()
            documents = way()
            best[name] = min(best[name], time.perf_counter() - started)
    print(f"{documents} documents from {args.path}, best of {args.repeat} (wall seconds)\n")
    print(f"{'way':<28} {'seconds':>8} {'docs/s':>8}")
    for name, seconds in best.items():
        print(f"{name:<28} {seconds:>8.2f} {documents / seconds:>8.0f}")
    work, single, many = best.values()
    print(f"\nrunner overhead (run, 1 worker / work): {single / work:.2f}x (target <= 1.2)")
    print(f"speed-up of {args.workers} workers over 1: {single / many:.2f}x "
          f"(target >= 1.8 on {args.workers} idle cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
