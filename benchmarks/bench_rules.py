"""Throughput of the rules backend over HINT's 3,686 trials, one process on one core.

    python benchmarks/bench_rules.py [../shared/data/hint/hint-trials.jsonl] [--repeat 5]
    python benchmarks/bench_rules.py --against 14053a9 [--repeat 5]

Ingest (reading the JSONL), segmentation and extraction are timed separately, extraction as shipped,
without the sequence tagger (lexicon and context rules alone, `Backend(tagger=False)`) and with the
tagger in pure Python (`CrfTagger(arrays=False)`, what runs without numpy), so the tagger's cost and
numpy's gain are ratios within one run; each stage runs `--repeat` times over every document
and the best run is reported (least disturbed by other load). Each extraction run gets a fresh
Backend, so its memory of repeated criteria texts starts empty; a last row times extraction over the
criteria with every repeated text left out (each text once) and scales it to the whole set: the speed
a registry without repeats would see.
Extracted records are counted and dropped as a batch run streams them to disk (keeping 3,686 records
alive would mostly time Python's garbage collector).
The process is pinned to one CPU; docs/s is given against CPU time (what one core delivers) and
against wall time (which includes waiting for the core when the machine is shared).
The target (issue 16) is >= 400 documents/s for extraction.

`--against COMMIT` times extraction of this tree and of COMMIT (exported with `git archive` to a
temporary directory) side by side: each run is a fresh subprocess of this interpreter that ingests,
segments and extracts once with its own tree's code; old and new alternate, `--repeat` runs each,
and the best of each is compared (issue 18: >= 2x the commit it was filed at, 14053a9).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pipeline.config import RunConfig
from pipeline.extract.rules import Backend, load_default_lexicon, load_default_model
from pipeline.extract.rules.crf import CrfTagger
from pipeline.ingest import Document, iter_documents
from pipeline.schema import TrialRecord
from pipeline.segment import segment

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / ".." / "shared" / "data" / "hint" / "hint-trials.jsonl"

# One timed extraction with the code of the tree on sys.path[0]; the same lines work on old commits.
RUN_ONCE = """
import json, os, sys, time
from pathlib import Path
import pipeline
from pipeline.config import RunConfig
from pipeline.extract.rules import Backend
from pipeline.ingest import Document, iter_documents
from pipeline.segment import segment
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
records = [segment(d) for d in iter_documents([Path(sys.argv[1])]) if isinstance(d, Document)]
backend = Backend(RunConfig(backend="rules"))
cpu, wall = time.process_time(), time.perf_counter()
entities = sum(len(backend.extract(r).record.entities()) for r in records)
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
print(json.dumps({"code": pipeline.__file__, "docs": len(records), "entities": entities, "cpu": cpu, "wall": wall}))
"""


def best_of(repeat: int, work: Callable[[], object]) -> tuple[tuple[float, float], object]:
    """((cpu seconds, wall seconds), result) of the run with the least CPU time."""
    best, result = (float("inf"), float("inf")), None
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        result = work()
        best = min(best, (time.process_time() - cpu, time.perf_counter() - wall))
    return best, result


def extract_all(records: list[TrialRecord], **options: bool | CrfTagger) -> int:
    """Entities found in `records` by a fresh Backend (no criteria remembered from an earlier run)."""
    backend = Backend(RunConfig(backend="rules"), **options)
    return sum(len(backend.extract(r).record.entities()) for r in records)


def without_repeats(records: list[TrialRecord]) -> list[TrialRecord]:
    """The records keeping only the first criterion of each text (sub-criteria with their parents)."""
    seen: set[str] = set()
    kept = []
    for record in records:
        first = []
        for criterion in record.criteria:
            if criterion.text not in seen:
                seen.add(criterion.text)
                first.append(criterion)
        ids = {c.id for c in first}
        first = [c for c in first if c.parent is None or c.parent in ids]
        kept.append(record.model_copy(update={"criteria": first}))
    return kept


def print_stages(path: Path, repeat: int) -> None:
    def ingest() -> list[Document]:
        return [d for d in iter_documents([path]) if isinstance(d, Document)]

    ingest_s, documents = best_of(repeat, ingest)
    segment_s, records = best_of(repeat, lambda: [segment(d) for d in documents])
    extract_s, entities = best_of(repeat, lambda: extract_all(records))
    plain_s, _ = best_of(repeat, lambda: extract_all(records, tagger=False))
    pure = CrfTagger(load_default_model(), load_default_lexicon().word_type, arrays=False)  # kept warm as the default
    pure_s, _ = best_of(repeat, lambda: extract_all(records, tagger=pure))
    unique = without_repeats(records)
    unique_s, _ = best_of(repeat, lambda: extract_all(unique))
    n = len(documents)
    criteria = sum(len(r.criteria) for r in records)
    share = criteria / sum(len(r.criteria) for r in unique)  # scales the unique run to the whole set
    chars = sum(len(r.source_text) for r in records)
    print(f"{n} documents, {criteria} criteria ({criteria / share:.0f} when each text is kept once), "
          f"{entities} entities, {chars / 1e6:.1f} M characters; one core\n")  # fmt: skip
    print("| stage    | CPU s | docs/s (CPU) | criteria/s (CPU) | wall s | docs/s (wall) |")
    print("|---|---|---|---|---|---|")
    total = (segment_s[0] + extract_s[0], segment_s[1] + extract_s[1])
    stages = (("ingest", ingest_s), ("segment", segment_s), ("extract", extract_s), ("seg+ext", total),
              ("extract without tagger", plain_s), ("extract, tagger without numpy", pure_s),
              ("extract, no repeated criteria (scaled)", (unique_s[0] * share, unique_s[1] * share)))  # fmt: skip
    for stage, (cpu, wall) in stages:
        rates = f"{n / cpu:12.0f} | {criteria / cpu:16.0f} | {wall:6.2f} | {n / wall:13.0f}"
        print(f"| {stage:<8} | {cpu:5.2f} | {rates} |")
    print(f"\nthe tagger costs {extract_s[0] / plain_s[0]:.2f}x the CPU time of extraction without it; "
          f"numpy makes extraction {pure_s[0] / extract_s[0]:.2f}x faster")


def run_once(tree: Path, path: Path) -> dict:
    """One extraction over `path` in a fresh interpreter importing the pipeline of `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", RUN_ONCE, str(path.resolve())], cwd=tree, env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    result = json.loads(done.stdout.splitlines()[-1])
    if not Path(result["code"]).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"the run meant for {tree} imported {result['code']}")
    return result


def print_against(commit: str, path: Path, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-rules-") as tmp:
        old = Path(tmp)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
        runs: dict[str, list[dict]] = {commit: [], "this tree": []}
        for round_ in range(repeat):
            for name, tree in ((commit, old), ("this tree", ROOT)):
                runs[name].append(run_once(tree, path))
                print(f"round {round_ + 1}: {name}: {runs[name][-1]['cpu']:.2f} s CPU", file=sys.stderr)
    best = {name: min(results, key=lambda r: r["cpu"]) for name, results in runs.items()}
    base = best[commit]["cpu"]
    print(f"extraction of {best[commit]['docs']} documents, best of {repeat} alternating runs each, one core\n")
    print("| code | entities | CPU s | docs/s (CPU) | wall s | speed vs " + commit + " |")
    print("|---|---|---|---|---|---|")
    for name, r in best.items():
        print(f"| {name} | {r['entities']} | {r['cpu']:.2f} | {r['docs'] / r['cpu']:.0f} | {r['wall']:.2f} "
              f"| {base / r['cpu']:.2f}x |")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--against", metavar="COMMIT", help="time extraction side by side with this commit")
    args = parser.parse_args(argv)
    if not args.path.is_file():
        print(f"SKIP: {args.path} not found (the HINT file of ../shared/data is needed)")
        return 0
    if args.against:
        print_against(args.against, args.path, args.repeat)
        return 0
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    print_stages(args.path, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
