"""The library API: structure one text in a notebook, or run a batch, without the command line.

(`run_batch`, not `run`: `pipeline.run` is the batch runner's package.)

    >>> from pipeline import structure
    >>> record = structure("Inclusion Criteria:\\n- Hemoglobin < 80 g/L")
    >>> [(e.type, e.text) for e in record.entities()]

Both go through the same stages and checks as `trialstruct run`: a record returned here is
byte-for-byte the line `run` writes for the same document and settings.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline.config import RunConfig
from pipeline.errors import ConfigError, IngestError
from pipeline.extract import Backend, load_backend
from pipeline.ingest import SUPPORTED_SUFFIXES, Document, iter_documents, sha256_text
from pipeline.run import RunResult, Shard, process_document
from pipeline.run import run as run_inputs
from pipeline.schema import Source, TrialRecord


def structure(
    source: str | os.PathLike[str], *, doc_id: str = "document", config: RunConfig | None = None, **settings: Any
) -> TrialRecord:
    """One document as a validated `TrialRecord`.

    `source` is eligibility text (read like a table's criteria cell: headers, bullets and wrapped
    lines are understood) or a file holding one document in any format `run` reads: a `Path`, or a
    one-line string ending in a supported suffix that names an existing file. Settings are
    `RunConfig` fields (`backend="rules"` by default, `model=`, `base_url=`, ...).
    """
    chosen = _config(config, settings)
    path = _as_path(source)
    document = _inline_document(str(source), doc_id) if path is None else _single_document(path, chosen)
    record, _ = process_document(document, _backend(chosen))
    return record


def run_batch(
    inputs: str | os.PathLike[str] | list[str | os.PathLike[str]],
    outdir: str | os.PathLike[str],
    config: RunConfig | None = None,
    *,
    shard: str | None = None,
    **settings: Any,
) -> RunResult:
    """Structure every input into `outdir` exactly as `trialstruct run` does (resumable, in input order)."""
    paths = [Path(p) for p in (inputs if isinstance(inputs, list) else [inputs])]
    return run_inputs(paths, Path(outdir), _config(config, settings), shard=Shard.parse(shard) if shard else None)


def _config(config: RunConfig | None, settings: dict[str, Any]) -> RunConfig:
    if config is not None and settings:
        raise ConfigError("give either config= or keyword settings, not both")
    if config is not None:
        return config
    return RunConfig(**{"backend": "rules", **settings})


@lru_cache(maxsize=8)
def _backend(config: RunConfig) -> Backend:
    """Backends load lexicons or models once; repeated calls with the same settings share one."""
    return load_backend(config)


def _as_path(source: str | os.PathLike[str]) -> Path | None:
    if not isinstance(source, str):
        return Path(source)
    looks_like_file = "\n" not in source and Path(source).suffix.lower() in SUPPORTED_SUFFIXES
    return Path(source) if looks_like_file and Path(source).is_file() else None


def _inline_document(text: str, doc_id: str) -> Document:
    source = Source(path="<text>", format="inline", sha256=sha256_text(text))
    return Document(doc_id, source, text, layout="criteria")


def _single_document(path: Path, config: RunConfig) -> Document:
    found = list(iter_documents([path], id_field=config.id_field, text_field=config.text_field,
                                max_bytes=config.max_bytes))
    if len(found) != 1:
        raise ConfigError(f"{path}: holds {len(found)} documents; `structure` takes one (use `run` for a batch)")
    [item] = found
    if isinstance(item, IngestError):
        raise item
    return item
