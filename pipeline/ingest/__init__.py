"""Ingest: read trial documents from files into `Document`s with one exact `source_text` each.

Supported inputs (directories are walked, hidden files skipped, order is sorted and stable):
- `.txt` / `.md`: a scraped registry page, or a criteria-only text (Chia's `NCTxxx_inc.txt` /
  `NCTxxx_exc.txt`). `source_text` is the file decoded as UTF-8, newlines untouched, BOM dropped.
- `.json`: ClinicalTrials.gov API v2: one study, a list of studies, or `{"studies": [...]}`.
- `.jsonl` / `.csv`: tables with a criteria text column and optional metadata columns.

Every problem with an input becomes an `IngestError` yielded in the stream (one per file or row),
so a batch carries on past bad files and reports each of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pipeline.errors import IngestError
from pipeline.schema import CriterionKind, Source, Trial

TEXT_SUFFIXES = {".txt", ".md"}
TABLE_SUFFIXES = {".jsonl", ".csv"}
JSON_SUFFIXES = {".json"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | TABLE_SUFFIXES | JSON_SUFFIXES


@dataclass
class Document:
    """One trial document, ready for segmentation.

    `layout` tells the segmenter where the criteria are: `page` means a registry page whose
    metadata labels and criteria headers must be found; `criteria` means everything from
    `criteria_start` on is the eligibility criteria text (its headers, if any, still apply).
    """

    doc_id: str
    source: Source
    source_text: str
    layout: Literal["page", "criteria"]
    criteria_start: int = 0
    default_kind: CriterionKind = "inclusion"
    trial: Trial = field(default_factory=Trial)
    warnings: list[str] = field(default_factory=list)



def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def iter_input_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files named directly are taken whatever their suffix (and rejected later if unsupported);
    directories contribute their supported files, recursively, in sorted order."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                hidden = any(part.startswith(".") for part in child.relative_to(path).parts)
                if child.is_file() and not hidden and child.suffix.lower() in SUPPORTED_SUFFIXES:
                    yield child
        else:
            yield path


def iter_documents(
    paths: Iterable[Path],
    *,
    id_field: str | None = None,
    text_field: str | None = None,
    max_bytes: int = 20_000_000,
) -> Iterator[Document | IngestError]:
    """Documents and errors, in input order."""
    from pipeline.ingest import ctgov, table, text

    for path in iter_input_files(paths):
        raw = read_bytes(path, max_bytes)
        if isinstance(raw, IngestError):
            yield raw
            continue
        suffix = path.suffix.lower()
        if suffix in TEXT_SUFFIXES:
            yield text.read_text_document(path, raw)
        elif suffix in JSON_SUFFIXES:
            yield from ctgov.read_ctgov(path, raw)
        elif suffix in TABLE_SUFFIXES:
            yield from table.read_table(path, raw, id_field=id_field, text_field=text_field)
        else:
            yield IngestError(str(path), f"unsupported file type {suffix or '(none)'!r}")


def read_bytes(path: Path, max_bytes: int) -> bytes | IngestError:
    """The file's bytes, or an error for missing, empty, oversized or binary files."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return IngestError(str(path), f"file is {size:,} bytes, over the {max_bytes:,}-byte limit (--max-bytes)")
        raw = path.read_bytes()
    except FileNotFoundError:
        return IngestError(str(path), "no such file or directory")
    except OSError as exc:
        return IngestError(str(path), f"cannot read: {exc.strerror or exc}")
    if not raw.strip():
        return IngestError(str(path), "file is empty")
    if b"\x00" in raw[:8192]:
        return IngestError(str(path), "binary file (contains NUL bytes), not a text document")
    return raw


def decode(path: Path, raw: bytes) -> str | IngestError:
    """UTF-8 with the BOM dropped and newlines untouched; an error names the first bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return IngestError(str(path), f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}")
