"""Ingest: read trial documents from files into `Document`s with one exact `source_text` each.

Supported inputs (directories are walked, hidden files skipped, order is sorted and stable):
- `.txt` / `.md`: a scraped registry page, or a criteria-only text (Chia's `NCTxxx_inc.txt` /
  `NCTxxx_exc.txt`). `source_text` is the file decoded as UTF-8, newlines untouched, BOM dropped.
- `.json`: ClinicalTrials.gov API v2: one study, a list of studies, or `{"studies": [...]}`.
- `.jsonl` / `.csv`: tables with a criteria text column and optional metadata columns.
- `.zip`: an archive of such files (ClinicalTrials.gov's bulk download), each member read in turn.

JSON, JSONL, CSV and archives are streamed: memory holds one study, row or member at a time, and
`max_bytes` limits each of those; a text page is read whole and `max_bytes` limits the file.

Every problem with an input becomes an `IngestError` yielded in the stream (one per file or row),
so a batch carries on past bad files and reports each of them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol, cast

from pipeline.errors import IngestError
from pipeline.schema import CriterionKind, Source, Trial

TEXT_SUFFIXES = {".txt", ".md"}
TABLE_SUFFIXES = {".jsonl", ".csv"}
JSON_SUFFIXES = {".json"}
ARCHIVE_SUFFIXES = {".zip"}
DOCUMENT_SUFFIXES = TEXT_SUFFIXES | TABLE_SUFFIXES | JSON_SUFFIXES  # what a file or an archive member can be
SUPPORTED_SUFFIXES = DOCUMENT_SUFFIXES | ARCHIVE_SUFFIXES
STREAMED_SUFFIXES = TABLE_SUFFIXES | JSON_SUFFIXES  # read a row or study at a time


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
    """Hash of the text's UTF-8 bytes; a lone surrogate (which readers reject) never makes it fail."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def unicode_problem(text: str) -> str | None:
    """Why `text` cannot be written as UTF-8 (a lone surrogate from a JSON escape such as `"\\ud800"`), or None."""
    match = _LONE_SURROGATE.search(text)
    if match is None:
        return None
    return f"holds a lone surrogate \\u{ord(match.group()):04x} at character {match.start()} (not valid Unicode)"


_UNDECODABLE = re.compile(r"[\udc80-\udcff]")  # bytes that were not UTF-8, kept by the surrogateescape handler


def undecodable_byte(text: str) -> tuple[int, int] | None:
    """(index, byte) of the first byte that was not UTF-8 in text decoded with `surrogateescape`, or None."""
    match = None if text.isascii() else _UNDECODABLE.search(text)
    return None if match is None else (match.start(), ord(match.group()) - 0xDC00)


# How a parsed JSON value's type reads in a message ("is a list, expected text").
JSON_TYPE_NAMES: dict[type, str] = {dict: "an object", list: "a list", str: "text", bool: "true/false",
                                    int: "a number", float: "a number", type(None): "null"}


def json_kind(value: object) -> str:
    return JSON_TYPE_NAMES.get(type(value), type(value).__name__)


STDIN = "-"  # as an input path: read standard input


def iter_input_files(paths: Iterable[Path]) -> Iterator[Path | IngestError]:
    """Files named directly are taken whatever their suffix (and rejected later if unsupported);
    directories contribute their supported files, recursively, in sorted order, following
    symlinked sub-directories once each. A directory with nothing to read is an error, so a run
    over the wrong folder cannot finish 'successfully' with no records."""
    for path in paths:
        if path.is_dir():
            walk = _Walk()
            found = False
            for item in walk.files(path, path):  # lazily: a registry-sized folder is never listed whole
                found = found or isinstance(item, Path)
                yield item
            if not found:
                yield IngestError(str(path), walk.nothing_found())
        else:
            yield path


class _Walk:
    """A depth-first walk in sorted order (the order of `sorted(path.rglob('*'))`) that follows
    symlinked directories but enters each real directory once, so a link cycle ends."""

    def __init__(self) -> None:
        self.entered: set[tuple[int, int]] = set()
        self.skipped_suffixes: Counter[str] = Counter()

    def files(self, root: Path, directory: Path) -> Iterator[Path | IngestError]:
        try:
            identity = directory.stat()
            names = sorted(entry.name for entry in os.scandir(directory))
        except OSError as exc:
            yield IngestError(str(directory), f"cannot list directory: {exc.strerror or exc}")
            return
        key = (identity.st_dev, identity.st_ino)
        if key in self.entered:
            yield IngestError(str(directory), "symlink to a directory already read (a link cycle or a second "
                                              "path to the same folder): not read again")
            return
        self.entered.add(key)
        for name in names:
            if name.startswith("."):
                continue
            child = directory / name
            if child.is_dir():  # follows symlinks
                yield from self.files(root, child)
            elif Path(name).suffix.lower() in SUPPORTED_SUFFIXES:
                yield child  # FIFOs, broken links and the like are reported when read
            else:
                self.skipped_suffixes[Path(name).suffix.lower() or "(no suffix)"] += 1

    def nothing_found(self) -> str:
        return nothing_found("directory", SUPPORTED_SUFFIXES, self.skipped_suffixes)


def nothing_found(where: str, supported: set[str], skipped_suffixes: Counter[str]) -> str:
    """Why a directory or archive gave no input: it is empty, or it holds only files of other types."""
    reads = ", ".join(sorted(supported))
    if not skipped_suffixes:
        return f"no input files in this {where} (reads {reads})"
    found = ", ".join(f"{count} {suffix}" for suffix, count in sorted(skipped_suffixes.items()))
    return f"no supported input files in this {where} (reads {reads}; found {found})"


def iter_documents(
    paths: Iterable[Path],
    *,
    id_field: str | None = None,
    text_field: str | None = None,
    max_bytes: int = 20_000_000,
) -> Iterator[Document | IngestError]:
    """Documents and errors, in input order. Never raises for a bad input: an exception nobody
    foresaw while reading a file becomes that file's error, after the documents it already gave."""
    for path in iter_input_files(paths):
        if isinstance(path, IngestError):
            yield path
            continue
        try:
            if str(path) == STDIN:
                yield from _read_stdin(max_bytes, id_field=id_field, text_field=text_field)
                continue
            yield from _read_path(path, max_bytes, id_field=id_field, text_field=text_field)
        except Exception as exc:  # a reader bug must cost one file, not the run
            yield IngestError(str(path), f"unexpected {type(exc).__name__} while reading: {_first_line(exc)}")


def _read_stdin(max_bytes: int, *, id_field: str | None, text_field: str | None) -> Iterator[Document | IngestError]:
    """Standard input (`-`), its format told by its first bytes: JSON objects one a line are a
    JSONL table, other JSON a ClinicalTrials.gov document (both streamed), anything else a text page."""
    from pipeline.ingest import ctgov, table, text

    stream = cast(io.BufferedReader, sys.stdin.buffer)
    head = stream.peek(1 << 16).lstrip()
    if _is_table_row(head.split(b"\n", 1)[0].strip()):
        yield from table.read_jsonl_stream(Path("<stdin>.jsonl"), stream, max_bytes, id_field=id_field,
                                           text_field=text_field)
        return
    if head[:1] in (b"{", b"["):
        yield from ctgov.read_ctgov(Path("<stdin>.json"), stream, max_bytes)
        return
    raw = stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        yield IngestError(STDIN, f"standard input is over the {max_bytes:,}-byte limit (--max-bytes)")
    elif not raw.strip():
        yield IngestError(STDIN, "standard input is empty")
    else:
        yield text.read_text_document(Path("<stdin>"), raw)


def _is_table_row(line: bytes) -> bool:
    """A JSON object on one line that is not a ClinicalTrials.gov study (or page of studies)."""
    if not (line.startswith(b"{") and line.endswith(b"}")):
        return False
    try:
        keys = json.loads(line).keys()
    except (ValueError, RecursionError):
        return True  # a broken row: the table reader reports it with its row number
    return not {"protocolSection", "studies"} & set(keys)


def _read_path(path: Path, max_bytes: int, *, id_field: str | None, text_field: str | None
               ) -> Iterator[Document | IngestError]:
    """One input file: a text page is read whole (`max_bytes` limits the file); tables, CT.gov JSON
    and archives are streamed (`max_bytes` limits one row, study or page)."""
    from pipeline.ingest import archive

    suffix = path.suffix.lower()
    if suffix in ARCHIVE_SUFFIXES:
        yield from archive.read_zip(path, max_bytes, id_field=id_field, text_field=text_field)
        return
    handle = open_input(path, None if suffix in STREAMED_SUFFIXES else max_bytes)
    if isinstance(handle, IngestError):
        yield handle
        return
    with handle:
        if suffix in DOCUMENT_SUFFIXES:
            yield from read_stream(path, handle, max_bytes, id_field=id_field, text_field=text_field)
        else:
            yield IngestError(str(path), f"unsupported file type {suffix or '(none)'!r}")


def read_stream(path: Path, handle: BinaryIO, max_bytes: int, *, id_field: str | None, text_field: str | None
                ) -> Iterator[Document | IngestError]:
    """The documents of one open input (a file or an archive member), by the suffix of `path`."""
    from pipeline.ingest import ctgov, table, text

    suffix = path.suffix.lower()
    if suffix in JSON_SUFFIXES:
        yield from ctgov.read_ctgov(path, handle, max_bytes)
    elif suffix == ".jsonl":
        yield from table.read_jsonl_stream(path, handle, max_bytes, id_field=id_field, text_field=text_field)
    elif suffix == ".csv":
        yield from table.read_csv_stream(path, handle, max_bytes, id_field=id_field, text_field=text_field)
    else:
        raw = handle.read(max_bytes + 1)
        if len(raw) > max_bytes:
            yield IngestError(str(path), f"file is over the {max_bytes:,}-byte limit (--max-bytes)")
        elif not raw.strip():
            yield IngestError(str(path), "file is empty")
        else:
            yield text.read_text_document(path, raw)


def guarded_row(path: Path, row: int, build: Callable[[], Document | IngestError]) -> Document | IngestError:
    """`build()` for one row or study: an unforeseen exception costs that row only, and says which."""
    try:
        return build()
    except Exception as exc:
        return IngestError(str(path), f"row {row}: unexpected {type(exc).__name__}: {_first_line(exc)}", row=row)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else "(no message)"


def open_input(path: Path, max_bytes: int | None) -> io.BufferedReader[Any] | IngestError:
    """The file opened for reading, or an error for a missing, non-regular, oversized (when
    `max_bytes` is given) or binary (unless an archive) file. A FIFO, socket or device is never opened: reading one
    could block the run forever."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return IngestError(str(path), f"not a regular file ({_file_kind(info.st_mode)}): not read")
        if max_bytes is not None and info.st_size > max_bytes:
            return IngestError(str(path), f"file is {info.st_size:,} bytes, over the {max_bytes:,}-byte limit "
                                          "(--max-bytes)")
        handle = path.open("rb")
    except FileNotFoundError:
        detail = " (a broken symlink)" if path.is_symlink() else ""
        return IngestError(str(path), f"no such file or directory{detail}")
    except OSError as exc:
        return IngestError(str(path), f"cannot read: {exc.strerror or exc}")
    if path.suffix.lower() not in ARCHIVE_SUFFIXES and (binary := binary_problem(path, handle)):
        handle.close()
        return binary
    return handle


class Peekable(Protocol):
    def peek(self, size: int = ..., /) -> bytes: ...


def binary_problem(path: Path, handle: BinaryIO | Peekable) -> IngestError | None:
    """An error when the input starts like a binary file (a NUL byte in its first 8 KB)."""
    if b"\x00" in cast(Peekable, handle).peek(8192)[:8192]:  # files and zip members are buffered
        return IngestError(str(path), "binary file (contains NUL bytes), not a text document")
    return None


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"))
    return next((name for test, name in kinds if test(mode)), "not a file")


def decode(path: Path, raw: bytes) -> str | IngestError:
    """UTF-8 with the BOM dropped and newlines untouched; an error names the first bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return IngestError(str(path), f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}")
