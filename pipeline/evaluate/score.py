"""Scoring predictions against gold: `score_records` pairs documents, `build_report` aggregates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.evaluate.metrics import metric_names, score_document
from pipeline.evaluate.stats import DocumentResult, bootstrap, macro, micro, worst_documents
from pipeline.schema import TrialRecord


def score_records(
    gold: Sequence[TrialRecord], predictions: Mapping[str, TrialRecord]
) -> tuple[list[DocumentResult], dict[str, Any]]:
    """Score each gold document against the prediction with the same doc_id.

    A gold document without a prediction scores all its gold items as fn. Predictions whose
    source_text differs from gold are still scored but flagged: their offsets cannot agree.
    """
    docs = []
    for record in gold:
        pred = predictions.get(record.doc_id)
        notes = []
        if pred is not None and pred.source_text != record.source_text:
            notes.append("source_text differs from gold")
        docs.append(DocumentResult(record.doc_id, score_document(record, pred), missing=pred is None, notes=notes))
    gold_ids = {r.doc_id for r in gold}
    info = {
        "missing_documents": [d.doc_id for d in docs if d.missing],
        "text_mismatch": [d.doc_id for d in docs if d.notes],
        "extra_predictions": sorted(set(predictions) - gold_ids),
    }
    return docs, info


def build_report(
    docs: Sequence[DocumentResult],
    *,
    names: Sequence[str] | None = None,
    resamples: int = 1000,
    seed: int = 0,
    worst: int = 5,
    info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON report: micro `metrics`, `macro`, bootstrap `intervals`, `worst_documents`, `documents`."""
    names = list(names or metric_names())
    totals = micro(docs, names)
    return {
        **(info or {}),
        "documents_scored": len(docs),
        "metrics": {name: totals[name].as_dict() for name in names},
        "macro": macro(docs, totals),
        "intervals": bootstrap(docs, names, resamples=resamples, seed=seed),
        "bootstrap": {"resamples": resamples, "seed": seed, "level": 0.95, "unit": "document"},
        "worst_documents": worst_documents(docs, worst),
        "documents": [
            {
                "doc_id": doc.doc_id,
                "missing": doc.missing,
                "notes": doc.notes,
                "metrics": {name: c.as_dict() for name, c in doc.counts.items() if not c.empty},
            }
            for doc in docs
        ],
    }
