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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import CacheMode, RunConfig
from pipeline.extract import Backend, Usage, load_backend, resolve_backend_name
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


@dataclass
class Prediction:
    """One document through the backend: the record, or why there is none, and what it cost.

    `fallback` is the segmented record without entities when extraction failed: segmentation and
    metadata are deterministic stages that did run, so a failed model call is never scored as a
    segmentation or metadata error. `tokens` is the usage stored with each cached answer the
    document used (a replay reports the same tokens as the run that recorded it); `spent` is what
    this run itself asked of the model, re-ask attempts included.
    """

    record: TrialRecord | None
    problem: str | None = None
    fallback: TrialRecord | None = None
    offline_miss: bool = False
    spent: Usage = field(default_factory=Usage)
    tokens: dict[str, int] = field(default_factory=dict)


def predict_document(backend: Backend, document: Document, config: RunConfig | None = None) -> Prediction:
    """The record `trialstruct run` would write for one document, or a one-line reason why there is none."""
    from pipeline.run.plan import Planned
    from pipeline.run.runner import process
    from pipeline.segment import segment

    outcome = process(Planned(position=0, document=document), backend)
    tokens = recorded_tokens(config, outcome.keys) if config is not None else {}
    if not tokens:
        tokens = {"prompt_tokens": outcome.usage.prompt_tokens, "completion_tokens": outcome.usage.completion_tokens}
    if outcome.record_line is not None:
        return Prediction(TrialRecord.model_validate_json(outcome.record_line), spent=outcome.usage, tokens=tokens)
    assert outcome.failure is not None
    try:
        fallback = segment(document)
    except Exception:  # segmentation itself failed: nothing to score but the failure
        fallback = None
    return Prediction(None, outcome.failure.error, fallback, outcome.offline_miss, outcome.usage, tokens)


def recorded_tokens(config: RunConfig, keys: set[str]) -> dict[str, int]:
    """Summed prompt/completion tokens stored with the cache entries of `keys` (empty when none are stored)."""
    from pipeline.cache import open_cache

    if not keys or config.cache_mode is CacheMode.OFF:
        return {}
    totals = {"prompt_tokens": 0, "completion_tokens": 0}
    found = False
    for _, entry in open_cache(config).entries(keys):
        found = True
        for name in totals:
            totals[name] += int((entry.get("usage") or {}).get(name) or 0)
    return totals if found else {}


def run_backend(backend: Backend, document: Document) -> TrialRecord | str:
    """The record `trialstruct run` would write for one document, or a one-line reason why there is none."""
    prediction = predict_document(backend, document)
    return prediction.record if prediction.record is not None else str(prediction.problem)


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


@dataclass
class Predictions:
    """What `predict_records` gives the scorer and the reports."""

    records: dict[str, TrialRecord]
    backend: str
    problems: list[dict[str, str]]
    identity: dict[str, Any]
    tokens: dict[str, dict[str, int]] = field(default_factory=dict)
    offline_misses: list[str] = field(default_factory=list)
    recording: dict[str, int] = field(default_factory=dict)


def run_identity(runner: Runner) -> dict[str, Any]:
    """Backend, model and prompt of a runner, as reports and baselines name them.

    The prompt is None for backends that use none (rules, none); its name is the folder the
    configuration chose (`--prompt`), its version and hash those written into every record.
    """
    provenance = runner.backend.provenance()
    prompt = None
    if provenance.prompt_hash is not None:
        prompt = {"name": Path(runner.config.prompt).name, "version": provenance.prompt_version,
                  "hash": provenance.prompt_hash}
    return {"backend": runner.name, "model": provenance.model, "prompt": prompt}


def predict_records(
    gold: Sequence[TrialRecord], flags: dict[str, Any], gold_dir: Path, record_to: Path | None = None
) -> Predictions:
    """Predictions keyed by doc_id, with one problem entry per affected document.

    A document whose extraction failed is predicted by its segmented record without entities
    (see `Prediction`); its problem says why.
    """
    runner = load_runner(flags)
    documents = _reingested(gold, [Path.cwd(), gold_dir.resolve().parent.parent])
    result = Predictions({}, runner.name, [], run_identity(runner))
    with recording(runner, record_to) as recorded:
        for record in gold:
            document = documents.get(record.doc_id)
            if document is None:
                document = document_from_text(record)
                result.problems.append({"doc_id": record.doc_id, "problem":
                                        f"source {record.source.path} not found or changed; rebuilt from source_text"})
            prediction = predict_document(runner.backend, document, runner.config)
            result.tokens[record.doc_id] = prediction.tokens
            if prediction.record is None:
                result.problems.append({"doc_id": record.doc_id, "problem": f"extraction failed: {prediction.problem}"})
                if prediction.offline_miss:
                    result.offline_misses.append(record.doc_id)
            predicted = prediction.record or prediction.fallback
            if predicted is not None:
                predicted.doc_id = record.doc_id
                result.records[record.doc_id] = predicted
    result.recording = dict(recorded)
    if recorded.get("not_cached"):
        result.problems.append({"doc_id": "-", "problem": f"{recorded['not_cached']} model calls had no validated "
                                f"answer and are not in the recording {record_to} (an --offline replay fails those "
                                "documents)"})
    return result
