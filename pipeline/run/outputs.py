"""What a run writes: records, errors, positions, cache keys and the manifest, each atomically.

OUTDIR/records.jsonl   one TrialRecord a line, in input order (byte-identical on reruns)
OUTDIR/errors.jsonl    one line per input that failed, with the stage and a one-line reason
OUTDIR/manifest.json   versions, backend, configuration (no secrets), counts, usage, cache, timings
OUTDIR/positions.json  each output line's position among all inputs (lets `merge` interleave shards)
OUTDIR/cache-keys.txt  the model-cache entries the records came from (`cache export --for OUTDIR`)
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from pydantic_core import to_json

from pipeline import __version__
from pipeline.cache.recording import KEYS_FILE
from pipeline.extract import Usage
from pipeline.files import atomic_write
from pipeline.pricing import load_prices, run_cost
from pipeline.run.index import Done
from pipeline.run.journal import Journal
from pipeline.run.plan import Failure
from pipeline.schema import SCHEMA_VERSION

RECORDS = "records.jsonl"
ERRORS = "errors.jsonl"
MANIFEST = "manifest.json"
POSITIONS = "positions.json"
OUTPUT_FILES = (RECORDS, ERRORS, MANIFEST, POSITIONS, KEYS_FILE)


@dataclass
class Counts:
    """Totals over the records written (resumed ones included)."""

    records: int = 0
    criteria: int = 0
    entities: int = 0
    warnings: int = 0
    warning_kinds: Counter[str] = field(default_factory=Counter)

    def add(self, counts: tuple[int, int, int], warnings: tuple[str, ...]) -> None:
        """One record's counts and warnings, taken when it was made, never re-parsed."""
        self.records += 1
        self.criteria += counts[0]
        self.entities += counts[1]
        self.warnings += counts[2]
        self.warning_kinds.update(warning_kind(w) for w in warnings)


def respelled(line: str, journaled: str | None, current: str) -> str:
    """A journaled record line with its source path as this run spells the input.

    The path is the record's first `"source":{"path":` (compact JSON escapes every quote inside
    strings, so no text can imitate it), encoded by the serializer that wrote the record.
    """
    if journaled is None or journaled == current:
        return line
    old = '"source":{"path":' + to_json(journaled).decode()
    new = '"source":{"path":' + to_json(current).decode()
    return line.replace(old, new, 1)


def warning_kind(warning: str) -> str:
    """A warning with its particulars (quoted text, criterion ids, numbers) masked, for counting alike ones."""
    masked = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", warning)
    masked = re.sub(r"\b(inc|exc)-\d+(\.\d+)*\b", "ID", masked)
    return re.sub(r"\d+(\.\d+)?", "N", masked)


@dataclass
class RunResult:
    backend: str = ""
    documents: int = 0
    resumed: int = 0
    finished: int = 0
    counts: Counts = field(default_factory=Counts)
    failures: list[Failure] = field(default_factory=list)
    offline_missing: list[Failure] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cache_hits: int = 0
    cache_misses: int = 0
    interrupted_by: int | None = None  # the signal that stopped the run early
    seconds: float = 0.0

    @property
    def interrupted(self) -> bool:
        return self.interrupted_by is not None


def run_manifest(result: RunResult, context: dict[str, Any], keys: int) -> dict[str, Any]:
    """manifest.json, but for `usage_per_document` (see `_manifest_json`): everything about the run
    that may differ between reruns lives here, not in records."""
    return {
        "run_id": uuid.uuid4().hex,
        "status": "interrupted" if result.interrupted else "complete",
        "pipeline_version": __version__,
        "schema_version": SCHEMA_VERSION,
        **{k: context[k] for k in ("started", "inputs")},
        "seconds": round(result.seconds, 3),
        "docs_per_second": round(result.documents / result.seconds, 1) if result.seconds else None,
        "backend": result.backend,
        **{k: context[k] for k in ("provenance", "config", "config_hash", "shard", "limit")},
        "counts": {
            "documents": result.documents,
            "resumed": result.resumed,
            **{k: v for k, v in asdict(result.counts).items() if k != "warning_kinds"},
            "errors": len(result.failures),
        },
        "warnings": dict(result.counts.warning_kinds.most_common()),
        "usage": asdict(result.usage),
        "cost": run_cost(result.usage, result.documents, context["provenance"].get("model"), load_prices())
        if result.usage.calls else None,
        "cache": {**context["cache"], "hits": result.cache_hits, "misses": result.cache_misses,
                  "keys_file": KEYS_FILE, "keys": keys},
    }


def write_run(outdir: Path, journal: Journal, failures: dict[int, Failure], result: RunResult,
              context: dict[str, Any]) -> None:
    """Assemble the outputs from the journal in input order, streaming: the inputs, the records and
    the cache keys are read back from the run's on-disk index a row at a time.

    An interrupted run writes what it finished (its manifest says `interrupted`, and a rerun
    completes it); a complete run then compacts its journal into an index of records.jsonl.
    """
    result.failures = [failures[position] for position in sorted(failures)]
    index = journal.index

    def lines(read: Callable[[Done], str]) -> Iterator[str]:
        offset = 0
        for item in index.inputs():
            done = journal.done.get(item.key)
            if done is None:
                continue
            result.counts.add(done.counts, done.warnings)
            index.add_cache_keys(done.keys)
            if done.usage and any(done.usage.values()):
                index.add_usage(item.doc_id, done.usage)
            line = respelled(read(done), done.path, item.path)
            size = len(line.encode())
            index.place(item, offset, size)
            offset += size + 1
            yield line + "\n"

    with journal.reader() as read:
        atomic_write(outdir / RECORDS, lines(read))
    atomic_write(outdir / ERRORS, (f.json_line() for f in result.failures))
    atomic_write(outdir / POSITIONS, _positions_json(index.placed_positions(), sorted(failures)))
    count, keys = index.cache_keys()
    atomic_write(outdir / KEYS_FILE, (f"{key}\n" for key in keys))
    atomic_write(outdir / MANIFEST, _manifest_json(run_manifest(result, context, count), index.usage()))
    if not result.interrupted:
        journal.compact()


def _manifest_json(manifest: dict[str, Any], per_document: Iterable[tuple[str, str]]) -> Iterator[str]:
    """The manifest with `usage_per_document` last, streamed from the index a document a line (a
    registry run through a model has half a million of them)."""
    yield json.dumps(manifest, indent=2, ensure_ascii=False).removesuffix("\n}") + ',\n  "usage_per_document": {'
    separator = "\n"
    for doc_id, usage in per_document:
        yield f"{separator}    {json.dumps(doc_id, ensure_ascii=False)}: {usage}"
        separator = ",\n"
    yield ("\n  }" if separator != "\n" else "}") + "\n}\n"


def _positions_json(records: Iterable[int], errors: list[int]) -> Iterator[str]:
    """positions.json as `json.dumps` writes it, streamed: a registry run has 550,000 positions."""
    yield '{"records": ['
    numbers = iter(records)
    separator = ""
    while chunk := list(islice(numbers, 1_000)):
        yield separator + ", ".join(map(str, chunk))
        separator = ", "
    yield '], "errors": [' + ", ".join(map(str, errors)) + "]}\n"
