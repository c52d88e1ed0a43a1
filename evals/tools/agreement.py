"""Inter-annotator agreement: score the second pass against the first with the project's own scorer.

    python -m evals.tools.agreement [--first evals/gold] [--second evals/gold_pass2]

Pass 1 plays "gold" and pass 2 plays "prediction" for the documents both passes labelled; F1 is
symmetric in the two, so which side is which does not change the F1 columns. Prints one line per
metric (micro over documents) and one line per document for the entity metrics.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.evaluate import score_records
from pipeline.evaluate.metrics import metric_names
from pipeline.evaluate.stats import micro
from pipeline.schema import TrialRecord

REPO = Path(__file__).resolve().parents[2]
DOC_METRICS = ("criteria.segmentation", "entities.strict", "entities.relaxed")


def load_dir(directory: Path) -> dict[str, TrialRecord]:
    return {p.stem: TrialRecord.model_validate_json(p.read_text("utf-8")) for p in sorted(directory.glob("*.json"))}


def agreement_table(first: dict[str, TrialRecord], second: dict[str, TrialRecord]) -> list[str]:
    """Rows `metric  f1  precision  recall  tp fp fn` for the documents present in both passes."""
    shared = sorted(set(first) & set(second))
    docs, _ = score_records([first[d] for d in shared], {d: second[d] for d in shared})
    names = [n for n in metric_names() if any(n in doc.counts and not doc.counts[n].empty for doc in docs)]
    totals = micro(docs, names)
    rows = [f"documents in both passes: {len(shared)} ({', '.join(shared)})",
            f"{'metric':<36} {'F1':>6} {'P':>6} {'R':>6} {'tp':>5} {'fp':>5} {'fn':>5}"]
    for name in names:
        c = totals[name]
        rows.append(f"{name:<36} {c.f1:6.3f} {c.precision:6.3f} {c.recall:6.3f} {c.tp:5d} {c.fp:5d} {c.fn:5d}")
    for doc in docs:
        cells = "  ".join(f"{n} {doc.counts[n].f1:.3f}" for n in DOC_METRICS if n in doc.counts)
        rows.append(f"  {doc.doc_id}: {cells}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--first", type=Path, default=REPO / "evals" / "gold")
    parser.add_argument("--second", type=Path, default=REPO / "evals" / "gold_pass2")
    args = parser.parse_args(argv)
    for directory in (args.first, args.second):
        if not directory.is_dir():
            print(f"{directory}: no such directory", file=sys.stderr)
            return 2
    first, second = load_dir(args.first), load_dir(args.second)
    if not set(first) & set(second):
        print(f"no document is in both {args.first} and {args.second}", file=sys.stderr)
        return 1
    print("\n".join(agreement_table(first, second)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
