"""Predictions made on the spot for `trialstruct eval --backend`: ingest -> segment -> extract.

Each gold document is rebuilt from its own source: the file named in `gold.source.path` (relative
to the working directory or to the repository holding the gold directory) is ingested again and
the document whose source_text hash equals the gold's is used, so structured metadata (ClinicalTrials.gov
fields, table columns) is read exactly as `trialstruct run` reads it. When that file is not
available the document is rebuilt from the gold `source_text` alone (metadata from structured
fields is then lost, and a note says so). Gold annotations never reach the backend.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import RunConfig
from pipeline.extract import Backend, load_backend, resolve_backend_name
from pipeline.ingest import Document, iter_documents
from pipeline.ingest.text import read_text_document
from pipeline.schema import TrialRecord


@dataclass
class Runner:
    """A loaded backend with its resolved name and the configuration it was built from."""

    backend: Backend
    name: str
    config: RunConfig


def load_runner(flags: dict[str, Any]) -> Runner:
    """The backend named by the CLI flags (None means 'not given'; `config_file` is the --config TOML)."""
    from pipeline.config import build_config

    settings = {k: v for k, v in flags.items() if k != "config_file"}
    config = build_config(settings, flags.get("config_file"))
    return Runner(load_backend(config), resolve_backend_name(config), config)


@contextmanager
def recording(runner: Runner, path: Path | None) -> Iterator[dict[str, int]]:
    """Collect the model-cache keys used inside the block, then export the cached ones to `path`.

    The recording lets CI replay exactly this evaluation with `cache import` and `--offline`.
    Calls whose answer never validated are not in the cache (see pipeline.cache), so they cannot be
    recorded; the yielded dict reports {"recorded": n, "not_cached": m} once the block is done.
    """
    from pipeline.cache import open_cache
    from pipeline.cache.recording import export_recording
    from pipeline.cache.store import collect_keys
    status: dict[str, int] = {}
    with collect_keys() as keys:
        yield status
    if path is None:
        return
    cache = open_cache(runner.config)
    present = [key for key, _ in cache.entries(sorted(keys))] if keys else []
    status["recorded"] = export_recording(cache, present, path)
    status["not_cached"] = len(keys) - len(present)


def run_backend(backend: Backend, document: Document) -> TrialRecord | str:
    """The record `trialstruct run` would write for one document, or a one-line reason why there is none."""
    from pipeline.run import process_document

    try:
        return process_document(document, backend)[0]
    except Exception as exc:  # one failing document must not stop the evaluation; it is scored as missing
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _resolve(path: str, roots: Sequence[Path]) -> Path | None:
    for root in roots:
        candidate = root / path
        if candidate.is_file():
            return candidate
    return None


def _reingested(records: Sequence[TrialRecord], roots: Sequence[Path]) -> dict[str, Document]:
    """Gold doc_id -> the freshly ingested document with the same source_text hash."""
    by_path: dict[str, list[TrialRecord]] = defaultdict(list)
    for record in records:
        by_path[record.source.path].append(record)
    found: dict[str, Document] = {}
    for path, group in by_path.items():
        resolved = _resolve(path, roots)
        if resolved is None:
            continue
        wanted = {r.source.sha256: r.doc_id for r in group}
        for item in iter_documents([resolved]):
            if isinstance(item, Document) and item.source.sha256 in wanted:
                found[wanted[item.source.sha256]] = item
    return found


def document_from_text(record: TrialRecord) -> Document:
    """A document rebuilt from the gold source_text only (used when the source file is unavailable)."""
    if record.source.format == "text":
        document = read_text_document(Path(record.source.path), record.source_text.encode("utf-8"))
        if isinstance(document, Document):
            document.doc_id = record.doc_id
            return document
    return Document(record.doc_id, record.source, record.source_text, layout="criteria")


def predict_records(
    gold: Sequence[TrialRecord], flags: dict[str, Any], gold_dir: Path, record_to: Path | None = None
) -> tuple[dict[str, TrialRecord], str, list[dict[str, str]]]:
    """Predictions keyed by doc_id, the backend name, and one problem entry per affected document."""
    runner = load_runner(flags)
    documents = _reingested(gold, [Path.cwd(), gold_dir.resolve().parent.parent])
    predictions: dict[str, TrialRecord] = {}
    problems: list[dict[str, str]] = []
    with recording(runner, record_to) as recorded:
        for record in gold:
            document = documents.get(record.doc_id)
            if document is None:
                document = document_from_text(record)
                problems.append({"doc_id": record.doc_id, "problem":
                                 f"source {record.source.path} not found or changed; rebuilt from source_text"})
            result = run_backend(runner.backend, document)
            if isinstance(result, str):
                problems.append({"doc_id": record.doc_id, "problem": f"extraction failed: {result}"})
            else:
                result.doc_id = record.doc_id
                predictions[record.doc_id] = result
    if recorded.get("not_cached"):
        problems.append({"doc_id": "-", "problem": f"{recorded['not_cached']} model calls had no validated answer "
                         f"and are not in the recording {record_to} (an --offline replay fails those documents)"})
    return predictions, runner.name, problems
