"""Tokens and seconds per document on the seeds with the local backend: per-criterion vs batched calls.

    python benchmarks/bench_llm_batching.py [--max-tokens 256] [--max-reasks 1] [--model-path any.gguf]

Per-criterion sends one criterion per call (batch_token_budget 1); batched packs criteria up to the
default batch budget. Quality is the relaxed entity F1 against evals/gold (same type, overlapping
span), so the cheaper mode can be kept only at equal quality. Also counts why grounding dropped
entities. Needs `pip install '.[local]'`; the model cache is off so every call is a real one.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import RunConfig
from pipeline.evaluate.match import Counts, count
from pipeline.extract import Usage
from pipeline.extract.local import Backend
from pipeline.ingest import iter_documents
from pipeline.schema import TrialRecord
from pipeline.segment import segment

REPO = Path(__file__).resolve().parent.parent
DROP_REASONS = ("text not found", "value text", "time text", "unknown criterion", "cut off")


@dataclass
class ModeResult:
    rows: list[tuple[str, int, Usage, float, int, Counts]] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)


def gold_for(record: TrialRecord) -> TrialRecord | None:
    path = REPO / "evals" / "gold" / f"{record.doc_id}.json"
    if not path.is_file():
        return None
    gold = TrialRecord.model_validate_json(path.read_text(encoding="utf-8"))
    return gold if gold.source_text == record.source_text else None


def drop_reason(warning: str) -> str | None:
    if not (warning.startswith("dropped") or "cut off" in warning):
        return None
    return next((reason for reason in DROP_REASONS if reason in warning), "other")


def run_mode(config: RunConfig, records: list[TrialRecord]) -> ModeResult:
    backend = Backend(config)
    backend.llama()  # load the model before timing
    result = ModeResult()
    for record in records:
        started = time.perf_counter()
        extraction = backend.extract(record)
        seconds = time.perf_counter() - started
        gold = gold_for(record)
        quality = count(gold.entities(), extraction.record.entities(), relaxed=True) if gold else Counts()
        entities = len(extraction.record.entities())
        result.rows.append((record.doc_id, len(record.criteria), extraction.usage, seconds, entities, quality))
        result.reasons.update(r for w in extraction.record.warnings if (r := drop_reason(w)))
    return result


def print_table(name: str, result: ModeResult) -> None:
    print(f"\n{name}")
    header = f"{'document':<22}{'crit':>5}{'calls':>6}{'reask':>6}{'prompt':>8}{'compl':>7}{'tok/doc':>8}"
    print(header + f"{'s/doc':>8}{'kept':>6}{'drop':>6}{'F1':>6}")
    total, seconds, quality = Usage(), 0.0, Counts()
    for doc_id, criteria, usage, secs, kept, counts in result.rows:
        tokens = usage.prompt_tokens + usage.completion_tokens
        print(f"{doc_id:<22}{criteria:>5}{usage.calls:>6}{usage.reasks:>6}{usage.prompt_tokens:>8}"
              f"{usage.completion_tokens:>7}{tokens:>8}{secs:>8.1f}{kept:>6}{usage.dropped_entities:>6}"
              f"{counts.f1:>6.2f}")
        total.add(usage)
        seconds += secs
        quality = quality + counts
    n = max(1, len(result.rows))
    tokens = total.prompt_tokens + total.completion_tokens
    print(f"{'mean per document':<22}{'':>5}{total.calls / n:>6.1f}{total.reasks / n:>6.1f}"
          f"{total.prompt_tokens / n:>8.0f}{total.completion_tokens / n:>7.0f}{tokens / n:>8.0f}{seconds / n:>8.1f}"
          f"{'':>6}{total.dropped_entities / n:>6.1f}{quality.f1:>6.2f}")
    print("dropped/cut-off by reason: " + (", ".join(f"{k} {v}" for k, v in result.reasons.most_common()) or "none"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--max-reasks", type=int, default=1)
    parser.add_argument("--model-path", default=None)
    parser.add_argument("--seeds", type=Path, default=REPO / "seeds")
    parser.add_argument("--mode", choices=("both", "per-criterion", "batched"), default="both")
    args = parser.parse_args()
    records = [r for r in (segment(d) for d in iter_documents([args.seeds])) if r.criteria]
    base = RunConfig(backend="local", cache_mode="off", max_tokens=args.max_tokens, max_reasks=args.max_reasks,
                     model_path=args.model_path)
    print(f"{len(records)} seed documents with criteria; max_tokens {args.max_tokens}, max_reasks {args.max_reasks}")
    modes = {"per-criterion": 1, "batched": base.batch_token_budget}
    for name, budget in modes.items():
        if args.mode not in ("both", name):
            continue
        config = RunConfig(**{**base.public_dict(), "batch_token_budget": budget})
        print_table(f"{name} (batch_token_budget={budget})", run_mode(config, records))


if __name__ == "__main__":
    main()
