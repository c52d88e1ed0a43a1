"""Run: ingest -> segment -> extract over a batch of inputs, writing one output directory.

OUTDIR/records.jsonl   one TrialRecord a line, in input order (byte-identical on reruns)
OUTDIR/errors.jsonl    one line per input that failed, with the stage and a one-line reason
OUTDIR/manifest.json   versions, backend, configuration (no secrets), counts, usage, timings

Every file is written to a temporary name and renamed into place, so a reader never sees a
half-written file and a crash never damages the previous run's outputs.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.config import RunConfig
from pipeline.extract import Backend, Usage, load_backend, resolve_backend_name
from pipeline.ingest import Document, IngestError, iter_documents
from pipeline.schema import SCHEMA_VERSION, TrialRecord
from pipeline.segment import segment


@dataclass
class Failure:
    path: str
    stage: str
    error: str
    doc_id: str | None = None

    def line(self) -> str:
        name = f"{self.path} ({self.doc_id})" if self.doc_id and self.doc_id not in self.path else self.path
        return f"{name}: {self.stage}: {self.error}"


@dataclass
class RunResult:
    records: list[TrialRecord] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    backend: str = ""
    seconds: float = 0.0

    @property
    def criteria(self) -> int:
        return sum(len(r.criteria) for r in self.records)

    @property
    def entities(self) -> int:
        return sum(len(r.entities()) for r in self.records)


def process_document(document: Document, backend: Backend) -> tuple[TrialRecord, Usage]:
    """One document through segment and extract; exceptions propagate to the caller."""
    record = segment(document)
    extraction = backend.extract(record)
    provenance = backend.provenance()
    return extraction.record.model_copy(update={"provenance": provenance}), extraction.usage


def iter_results(
    items: Iterable[Document | IngestError], backend: Backend
) -> Iterator[tuple[TrialRecord, Usage] | Failure]:
    seen: dict[str, str] = {}
    for item in items:
        if isinstance(item, IngestError):
            yield Failure(item.path, "ingest", item.message, item.doc_id)
            continue
        if item.doc_id in seen:
            message = f"duplicate doc_id {item.doc_id!r} (first in {seen[item.doc_id]})"
            yield Failure(item.source.path, "ingest", message, item.doc_id)
            continue
        seen[item.doc_id] = item.source.path
        try:
            yield process_document(item, backend)
        except Exception as exc:  # one bad document must not stop the batch
            stage = "segment" if "segment" in type(exc).__module__ else "extract"
            yield Failure(item.source.path, stage, f"{type(exc).__name__}: {exc}".splitlines()[0], item.doc_id)


def run(inputs: list[Path], outdir: Path, config: RunConfig, *, progress: Any = None) -> RunResult:
    """Process `inputs` into `outdir`; `progress` is an optional callable(done, total)."""
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    backend = load_backend(config)
    items = list(iter_documents(inputs, id_field=config.id_field, text_field=config.text_field,
                                max_bytes=config.max_bytes))
    result = RunResult(backend=resolve_backend_name(config))
    for done, outcome in enumerate(iter_results(items, backend), start=1):
        if isinstance(outcome, Failure):
            result.failures.append(outcome)
        else:
            result.records.append(outcome[0])
            result.usage.add(outcome[1])
        if progress is not None:
            progress(done, len(items))
    result.seconds = time.perf_counter() - started
    write_outputs(outdir, result, config, inputs, backend, started_at)
    return result


def write_outputs(outdir: Path, result: RunResult, config: RunConfig, inputs: list[Path], backend: Backend,
                  started_at: datetime) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    atomic_write(outdir / "records.jsonl", "".join(record_line(r) for r in result.records))
    atomic_write(outdir / "errors.jsonl", "".join(json.dumps(asdict(f), ensure_ascii=False) + "\n"
                                                  for f in result.failures))
    atomic_write(outdir / "manifest.json", json.dumps(manifest(result, config, inputs, backend, started_at),
                                                      indent=2, ensure_ascii=False) + "\n")


def record_line(record: TrialRecord) -> str:
    return record.model_dump_json() + "\n"


def manifest(result: RunResult, config: RunConfig, inputs: list[Path], backend: Backend,
             started_at: datetime) -> dict[str, Any]:
    return {
        "run_id": uuid.uuid4().hex,
        "pipeline_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "started": started_at.isoformat(timespec="seconds"),
        "seconds": round(result.seconds, 3),
        "docs_per_second": round(len(result.records) / result.seconds, 1) if result.seconds else None,
        "inputs": [str(p) for p in inputs],
        "backend": result.backend,
        "provenance": backend.provenance().model_dump(),
        "config": config.public_dict(),
        "counts": {
            "documents": len(result.records) + len(result.failures),
            "records": len(result.records),
            "errors": len(result.failures),
            "criteria": result.criteria,
            "entities": result.entities,
            "warnings": sum(len(r.warnings) for r in result.records),
        },
        "usage": asdict(result.usage),
    }


def atomic_write(path: Path, content: str) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over `path`."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
