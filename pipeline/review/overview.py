"""The cross-document problems overview: every disagreement with gold as one row, and its CSV.

The rows come from `diff.gold_diff` (one per problem: false positive, miss, span, type, value,
time window, negation); the page groups and sorts them, and `problems_csv` writes the same rows
with the document's relaxed F1 and the reviewer's comment, for a spreadsheet or pandas.
"""

from __future__ import annotations

import csv
import io
from typing import Any

CSV_COLUMNS = (
    "doc_id", "kind", "criterion", "type", "text", "start", "end", "entity", "gold_entity", "run", "gold",
    "doc_f1", "comment",
)


def problem_rows(bundles: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The problems of every document compared with gold, each row tagged with its doc_id."""
    rows = []
    for doc_id, bundle in bundles.items():
        gold = bundle.get("gold") or {}
        rows += [{"doc_id": doc_id, **problem} for problem in gold.get("problems", [])]
    return rows


def problems_csv(docs: list[dict[str, Any]], bundles: dict[str, dict[str, Any]]) -> str:
    """CSV text of all problems (columns `CSV_COLUMNS`; `kind` is the readable label)."""
    by_id = {d["doc_id"]: d for d in docs}
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in problem_rows(bundles):
        doc = by_id.get(row["doc_id"], {})
        score, comment = doc.get("score"), doc.get("comment")
        writer.writerow({
            **row,
            "kind": row["label"],
            "doc_f1": f"{score['f1']:.4f}" if score else "",
            "comment": comment["text"] if comment else "",
        })
    return out.getvalue()
