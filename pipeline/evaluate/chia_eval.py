"""`trialstruct eval --chia DIR --backend NAME`: entity scores on the Chia corpus.

Each `NCTxxx_inc.txt` / `_exc.txt` is ingested as the criteria-only document `trialstruct run`
would make of it, segmented, and passed to the backend. Predicted entities are compared with
Chia's entities of the eight domain types by absolute offsets into that text (strict and relaxed,
overall and per type; see `match` for discontinuous spans: strict needs the same fragments,
relaxed uses the hull from the first fragment's start to the last fragment's end). Entities whose
offsets do not match the corpus text are skipped by the reader and listed under `offset_errors`.

A backend that learned from data can say which texts it learned from (`trained_on(text)`; the rules
backend's lexicon records a digest of each training text). When the scored documents are among
them, the report carries an `in_sample` warning with the honest alternative (cross-validation):
recognised by content, so a copied, renamed or moved corpus is caught as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import EvaluateError
from pipeline.evaluate.chia import DOMAIN_TYPES, ChiaDocument, read_chia_dir
from pipeline.evaluate.metrics import entity_counts, entity_metric_names
from pipeline.evaluate.predict import load_runner, recording, run_backend
from pipeline.evaluate.score import build_report
from pipeline.evaluate.stats import DocumentResult
from pipeline.extract import Backend
from pipeline.ingest import Document
from pipeline.ingest.text import read_text_document


def _document(directory: Path, doc: ChiaDocument) -> Document | str:
    """The ingested document, or why it cannot be scored (its text must equal the corpus text)."""
    path = directory / f"{doc.doc_id}.txt"
    document = read_text_document(path, path.read_bytes())
    if not isinstance(document, Document):
        return str(document)
    if document.source_text != doc.text:
        return "ingested text differs from the corpus text (offsets would not line up)"
    return document


def score_chia_document(directory: Path, doc: ChiaDocument, backend: Backend) -> DocumentResult:
    gold = [e for e in doc.entities if e.type in DOMAIN_TYPES]
    document = _document(directory, doc)
    record = run_backend(backend, document) if isinstance(document, Document) else document
    if isinstance(record, str):
        counts, _ = entity_counts(gold, [])
        return DocumentResult(doc.doc_id, counts, missing=True, notes=[record])
    counts, _ = entity_counts(gold, record.entities())
    return DocumentResult(doc.doc_id, counts)


CV_COMMAND = "python evals/chia_cv.py"


def in_sample_warning(backend: Backend, docs: Sequence[ChiaDocument], directory: Path) -> dict[str, Any] | None:
    """Which scored documents the backend learned from, with the warning to show; None when none."""
    trained_on = getattr(backend, "trained_on", None)
    seen = [doc.doc_id for doc in docs if callable(trained_on) and trained_on(doc.text)]
    if not seen:
        return None
    warning = (
        f"IN-SAMPLE: {len(seen)} of {len(docs)} scored documents were used to build the {backend.name} backend "
        f"(its lexicon and tagger were learned from them), so these scores overstate accuracy on unseen trials. "
        f"Cross-validated by trial: {CV_COMMAND} {directory}"
    )
    return {"documents": len(seen), "of": len(docs), "doc_ids": seen, "cross_validate": CV_COMMAND, "warning": warning}


def evaluate_chia(
    directory: Path,
    flags: dict[str, Any],
    *,
    limit: int | None = None,
    record_to: Path | None = None,
    **report_options: Any,
) -> tuple[dict[str, Any], str]:
    """The entity report over a Chia folder and its baseline key `chia:<backend>`."""
    docs = read_chia_dir(directory)
    if not docs:
        raise EvaluateError(f"{directory}: no Chia .txt files found")
    runner = load_runner(flags)
    with recording(runner, record_to) as recorded:
        results = [score_chia_document(directory, doc, runner.backend) for doc in docs[:limit]]
    info = {
        "chia": str(directory),
        "backend": runner.name,
        "in_sample": in_sample_warning(runner.backend, docs[:limit], directory),
        "missing_documents": [r.doc_id for r in results if r.missing],
        "prediction_errors": [{"doc_id": r.doc_id, "problem": r.notes[0]} for r in results if r.missing],
        "offset_errors": [error for doc in docs[:limit] for error in doc.offset_errors],
        "recording": recorded,
    }
    return build_report(results, names=entity_metric_names(), info=info, **report_options), f"chia:{runner.name}"
