"""What `trialstruct run` costs on top of the work, and what worker processes buy.

    python benchmarks/bench_run.py [INPUT] [--repeat 3] [--workers 2] [--no-tagger]

Three ways over the same documents (default: HINT's 3,686 trials), run alternately in one
process so machine noise hits them alike, best of `--repeat`:
- work: ingest, segment and extract in a loop, records serialised and dropped (no runner);
- run, 1 worker: `pipeline.run.run` end to end (journal, ordered outputs, manifest), in this one
  process as `--workers 1` runs;
- run, N workers: the same with `--workers N` processes.
It prints seconds and docs/s of each, the runner's overhead (run with 1 worker / work; target
<= 1.2) and the speed-up of N workers (target >= 1.8 on 2 idle cores). Absolute numbers do not
carry between machines; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
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


def work_only(path: Path, config: RunConfig) -> int:
    backend = load_backend(config)
    done = 0
    for document in iter_documents([path]):
        if isinstance(document, Document):
            backend.extract(segment(document)).record.model_dump_json()
            done += 1
    return done


def run_once(path: Path, config: RunConfig, workers: int) -> int:
    out = Path(tempfile.mkdtemp(prefix="bench-run-"))
    try:
        return run([path], out, dataclasses.replace(config, workers=workers)).counts.records
    finally:
        shutil.rmtree(out)


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-tagger", action="store_true",
                        help="rules without the sequence tagger: faster work, so the runner's share shows more")
    args = parser.parse_args(argv)
    config = RunConfig(backend="rules", rules_tagger=not args.no_tagger)
    if not args.path.exists():
        print(f"SKIP: {args.path} not found (the HINT file of ../shared/data is needed)")
        return 0
    ways = {
        "work (segment + extract)": lambda: work_only(args.path, config),
        "run, 1 worker": lambda: run_once(args.path, config, 1),
        f"run, {args.workers} workers": lambda: run_once(args.path, config, args.workers),
    }
    best = {name: float("inf") for name in ways}
    cpu = {name: float("inf") for name in ways}
    documents = 0
    for _ in range(args.repeat):
        for name, way in ways.items():
            started, cpu_started = time.perf_counter(), cpu_seconds()
            documents = way()
            best[name] = min(best[name], time.perf_counter() - started)
            cpu[name] = min(cpu[name], cpu_seconds() - cpu_started)
    print(f"{documents} documents from {args.path}, best of {args.repeat}\n")
    print(f"{'way':<28} {'wall s':>8} {'CPU s':>8} {'docs/s':>8}")
    for name, seconds in best.items():
        print(f"{name:<28} {seconds:>8.2f} {cpu[name]:>8.2f} {documents / seconds:>8.0f}")
    work, single, many = best.values()
    work_cpu, single_cpu, _ = cpu.values()
    print(f"\nrunner overhead (run, 1 worker / work): {single / work:.2f}x wall, {single_cpu / work_cpu:.2f}x CPU "
          "(all processes; target <= 1.2)")
    print(f"speed-up of {args.workers} workers over 1: {single / many:.2f}x "
          f"(target >= 1.8 on {args.workers} idle cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
