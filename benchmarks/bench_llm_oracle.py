"""What the LLM path keeps of a perfect answer, and what it costs: the pipeline against a perfect model.

    python benchmarks/bench_llm_oracle.py [--docs N] [--max-tokens T] [--batch-token-budget B]

The perfect model (tests/oracle_server.py) is a real OpenAI-wire HTTP server on loopback that
answers every request with the gold entities of its criteria, cut at max_tokens like a real
endpoint. The pipeline runs as `trialstruct eval --gold evals/gold --backend openai --base-url URL`
would, with a fresh cache, over every gold document whose source is at hand (the ClinicalTrials.gov
and HINT ones are re-read from ../shared/data and skipped when it is absent). Printed: entity F1,
the share of ALL gold values / time windows / negations kept, calls, tokens per document (the
server's count, schema included; tokenizer named), re-asks and their share of the tokens.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests package: the perfect-model server

from pipeline.config import RunConfig
from pipeline.evaluate.match import Counts
from pipeline.evaluate.metrics import score_document
from pipeline.evaluate.predict import predict_records
from pipeline.extract.llm.prompt import load_prompt
from pipeline.schema import TrialRecord
from tests.oracle_server import TOKENIZER, OracleServer

REPO = Path(__file__).resolve().parent.parent
GOLD = REPO / "evals" / "gold"


@dataclass
class OracleReport:
    documents: int
    skipped: list[str]
    scores: dict[str, Counts]
    gold_values: int
    gold_temporals: int
    gold_negations: int
    calls: int
    reask_calls: int
    prompt_tokens: int
    completion_tokens: int
    reask_tokens: int
    problems: list[dict[str, str]]

    def kept(self, metric: str) -> float:
        total = {"values": self.gold_values, "temporal": self.gold_temporals, "negation": self.gold_negations}[metric]
        return self.scores[metric].tp / total if total else 1.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def available_gold(paths: list[Path]) -> tuple[list[TrialRecord], list[str]]:
    """Gold records whose source file can be re-read, and the doc ids skipped for want of it."""
    found, skipped = [], []
    for path in paths:
        record = TrialRecord.model_validate_json(path.read_text(encoding="utf-8"))
        (found if (REPO / record.source.path).is_file() else skipped).append(record)
    return found, [r.doc_id if isinstance(r, TrialRecord) else r for r in skipped]


def run_oracle(gold: list[TrialRecord], **settings: object) -> OracleReport:
    """Run the openai backend against the perfect model over `gold` and score what it kept."""
    prefix_messages = len(load_prompt(RunConfig().prompt).messages([]))
    with OracleServer(gold) as server, tempfile.TemporaryDirectory() as cache:
        flags = {"backend": "openai", "base_url": server.url, "model": "oracle", "cache_dir": cache, **settings}
        predicted = predict_records(gold, flags, GOLD)
        predictions, problems = predicted.records, predicted.problems
    scores: dict[str, Counts] = {}
    for record in gold:
        for name, counts in score_document(record, predictions.get(record.doc_id)).items():
            total = scores.setdefault(name, Counts())
            total.tp, total.fp, total.fn = total.tp + counts.tp, total.fp + counts.fp, total.fn + counts.fn
    entities = [e for r in gold for e in r.entities()]
    traffic = zip(server.requests, server.usage, strict=True)
    reasks = [u for body, u in traffic if len(body["messages"]) > prefix_messages]
    return OracleReport(
        documents=len(gold), skipped=[], scores=scores,
        gold_values=sum(e.value is not None for e in entities),
        gold_temporals=sum(e.temporal is not None for e in entities),
        gold_negations=sum(e.negated for e in entities),
        calls=len(server.usage), reask_calls=len(reasks),
        prompt_tokens=sum(u["prompt_tokens"] for u in server.usage),
        completion_tokens=sum(u["completion_tokens"] for u in server.usage),
        reask_tokens=sum(u["total_tokens"] for u in reasks),
        problems=problems,
    )


def print_report(report: OracleReport) -> None:
    strict, relaxed = report.scores["entities.strict"], report.scores["entities.relaxed"]
    per_doc = report.documents or 1
    rows = [
        ("documents", f"{report.documents} (skipped, source absent: {len(report.skipped)})", ""),
        ("entities strict F1", f"{strict.f1:.3f}", f"tp {strict.tp}, fp {strict.fp}, fn {strict.fn}   target >= 0.995"),
        ("entities relaxed F1", f"{relaxed.f1:.3f}", f"tp {relaxed.tp}, fp {relaxed.fp}, fn {relaxed.fn}"),
        ("gold values kept", f"{report.kept('values'):.1%}", f"of {report.gold_values}   target >= 98%"),
        ("gold time windows kept", f"{report.kept('temporal'):.1%}", f"of {report.gold_temporals}   target >= 99%"),
        ("gold negations kept", f"{report.kept('negation'):.1%}", f"of {report.gold_negations}   target >= 99.5%"),
        ("calls per document", f"{report.calls / per_doc:.2f}", f"{report.calls} calls"),
        ("prompt tokens per document", f"{report.prompt_tokens / per_doc:,.0f}", "schema included"),
        ("completion tokens per document", f"{report.completion_tokens / per_doc:,.0f}", ""),
        ("total tokens per document", f"{report.tokens / per_doc:,.0f}", ""),
        ("re-ask calls", f"{report.reask_calls}", f"{report.reask_tokens / max(1, report.tokens):.1%} of tokens   "
                                                  "target <= 5%"),
    ]
    print(f"Perfect model over the gold set; tokenizer: {TOKENIZER}")
    for name, value, note in rows:
        print(f"  {name:<32} {value:>12}   {note}")
    for problem in report.problems:
        print(f"  problem: {problem['doc_id']}: {problem['problem']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=None, help="only the first N gold documents")
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--batch-token-budget", type=int, default=None)
    args = parser.parse_args()
    gold, skipped = available_gold(sorted(GOLD.glob("*.json"))[: args.docs])
    settings = {k: v for k, v in (("max_tokens", args.max_tokens), ("batch_token_budget", args.batch_token_budget))
                if v is not None}
    report = run_oracle(gold, **settings)
    report.skipped = skipped
    print_report(report)


if __name__ == "__main__":
    main()
