"""Cache benchmarks: store latency as it grows to a million entries, and whole runs over HINT.

    python benchmarks/bench_cache.py store [--sizes 1000,100000,1000000]
    python benchmarks/bench_cache.py runs [--limit 3686] [--model-limit 1000] [--concurrency 4]

`store` fills a fresh cache to each size and times single puts (one transaction each, as a run
does), hits and misses at random keys. `runs` times `trialstruct run` over the HINT trials: the
offline rules backend cold and rerun into the same OUTDIR (every document resumed), then the
openai backend against the tests' scripted OpenAI-wire server on 127.0.0.1 (instant answers, so
the pipeline's own costs show): cold, fully cached, --offline, resumed, and --no-cache, whose
difference from the cold run is the cache's per-document overhead.
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.cache import ModelCache, cache_key  # noqa: E402

HINT = REPO.parent / "shared" / "data" / "hint" / "hint-trials.jsonl"


def synthetic_entry(n: int) -> tuple[str, dict]:
    """A small entry (~400 bytes): the store's cost per lookup, not JSON parsing, is what scales."""
    request = {"model": "bench", "messages": [{"role": "user", "content": f"criterion {n}: hemoglobin < {n % 200}"}]}
    parsed = {"entities": [{"text": "hemoglobin", "type": "Measurement", "start": 0, "end": 10}]}
    return cache_key(request), {"request": request, "response": parsed, "parsed": parsed, "usage": {"tokens": 42}}


def fill(cache: ModelCache, start: int, stop: int, batch: int = 20_000) -> None:
    for low in range(start, stop, batch):
        cache.store(synthetic_entry(n) for n in range(low, min(stop, low + batch)))


def time_per_op(operation, items: list) -> float:
    """Mean microseconds of `operation(item)` over `items`."""
    began = time.perf_counter()
    for item in items:
        operation(item)
    return (time.perf_counter() - began) / len(items) * 1e6


def bench_store(sizes: list[int], samples: int) -> None:
    print(f"{'entries':>10} {'db MB':>8} {'put µs':>8} {'hit µs':>8} {'miss µs':>8}")
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        cache = ModelCache(Path(tmp) / "models.sqlite3")
        filled = 0
        for size in sorted(sizes):
            fill(cache, filled, size)
            filled = size
            present = [synthetic_entry(rng.randrange(size))[0] for _ in range(samples)]
            fresh = [synthetic_entry(10**9 + size + n) for n in range(samples)]
            hit = time_per_op(cache.get, present)
            miss = time_per_op(cache.get, [key for key, _ in fresh])
            put = time_per_op(lambda item: cache.put(*item), fresh)
            megabytes = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6
            print(f"{size:>10,} {megabytes:>8.1f} {put:>8.1f} {hit:>8.1f} {miss:>8.1f}", flush=True)
        cache.close()


def trialstruct(*args: str) -> float:
    """Run the CLI; return wall seconds (exits with its stderr if it fails on more than bad inputs)."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, cwd=REPO,
                          check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"trialstruct {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - began


def hint_subset(limit: int, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "hint.jsonl"
    with HINT.open(encoding="utf-8") as source:
        path.write_text("".join(line for _, line in zip(range(limit), source, strict=False)), encoding="utf-8")
    return path


def row(label: str, seconds: float, docs: int, baseline: float | None = None) -> None:
    versus = f"{seconds / baseline:>8.1%}" if baseline else f"{'':>8}"
    print(f"{label:<40} {seconds:>8.2f} {docs / seconds:>8.1f} {seconds / docs * 1e3:>8.2f} {versus}", flush=True)


def bench_runs(limit: int, model_limit: int, concurrency: int) -> None:
    if not HINT.is_file():
        raise SystemExit(f"{HINT}: missing (the shared data folder is needed for this benchmark)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        inputs = hint_subset(limit, work / "all")
        docs = sum(1 for _ in inputs.open(encoding="utf-8"))
        cache = ["--cache-dir", str(work / "cache")]
        print(f"{'run':<40} {'seconds':>8} {'docs/s':>8} {'ms/doc':>8} {'of cold':>8}")
        rules = ["run", str(inputs), "--backend", "rules", *cache]
        cold = trialstruct(*rules, "-o", str(work / "rules"))
        row(f"rules backend, cold ({docs} docs)", cold, docs)
        row("rules backend, rerun into same OUTDIR", trialstruct(*rules, "-o", str(work / "rules")), docs, cold)
        subset = hint_subset(model_limit, work / "subset")
        bench_model_runs(work, subset, min(docs, model_limit), cache, concurrency)


def instant_model() -> Any:
    """The tests' scripted OpenAI-wire server, answering each criterion with its last word as a Condition."""
    sys.path.insert(0, str(REPO))
    from tests.fault_server import CRITERION_LINE, FaultServer, answer, criteria_message

    class InstantModel(FaultServer):
        def next_action(self, request: dict[str, Any]) -> Any:
            lines = CRITERION_LINE.findall(criteria_message(request))
            words = [(cid, re.findall(r"\w+", text)) for cid, text in lines]
            return answer(*({"criterion": cid, "text": found[-1], "type": "Condition"} for cid, found in words
                            if found))

    return InstantModel()


def bench_model_runs(work: Path, inputs: Path, docs: int, cache: list[str], concurrency: int) -> None:
    """Model-backed runs against an instant local server, so the pipeline's own costs show."""
    with instant_model() as server:
        model = ["run", str(inputs), "--backend", "openai", "--base-url", server.url, "--model", "bench",
                 "--concurrency", str(concurrency)]
        cold = trialstruct(*model, *cache, "-o", str(work / "m-cold"))
        calls = len(server.requests)
        row(f"openai-wire server, cold ({docs} docs)", cold, docs)
        row("  new OUTDIR, fully cached", trialstruct(*model, *cache, "-o", str(work / "m-hit")), docs, cold)
        row("  new OUTDIR, --offline replay", trialstruct(*model, *cache, "--offline", "-o", str(work / "m-off")),
            docs, cold)
        row("  rerun into same OUTDIR (resume)", trialstruct(*model, *cache, "-o", str(work / "m-cold")), docs, cold)
        nocache = trialstruct(*model, "--no-cache", "-o", str(work / "m-none"))
        row("  --no-cache", nocache, docs, cold)
    identical = (work / "m-cold" / "records.jsonl").read_bytes() == (work / "m-off" / "records.jsonl").read_bytes()
    print(f"model calls in the cold run: {calls} ({calls / docs:.2f}/doc, --concurrency {concurrency}); "
          f"cold vs offline records.jsonl byte-identical: {identical}")
    print(f"cache overhead per document (cold read-write minus --no-cache): {(cold - nocache) / docs * 1e3:+.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    store = sub.add_parser("store")
    store.add_argument("--sizes", default="1000,100000,1000000")
    store.add_argument("--samples", type=int, default=2000)
    runs = sub.add_parser("runs")
    runs.add_argument("--limit", type=int, default=3686)
    runs.add_argument("--model-limit", type=int, default=1000, help="trials for the model-backed rows")
    runs.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    if args.what == "store":
        bench_store([int(s) for s in args.sizes.split(",")], args.samples)
    else:
        bench_runs(args.limit, args.model_limit, args.concurrency)


if __name__ == "__main__":
    main()
