"""Resume journal: one line per finished document, so a killed run loses at most the documents in
flight.

Each line is flushed to the operating system as soon as the document is done, which is all a
SIGKILL-ed process needs; the file is fsync'ed at most once a second (and on close), so a power
loss costs at most a second of finished documents, which the rerun redoes.

`OUTDIR/.parts/<config hash>.jsonl` holds, per line, a small JSON header (document key, cache
keys, usage, counts), a tab, then the record's JSON exactly as it goes into records.jsonl (compact
JSON never contains a raw tab). A rerun with the same configuration skips every document found
here; a line torn by a crash is cut off before anything is appended.

Once a run completes, its records are in records.jsonl, so the journal is compacted to an index:
the same headers, each pointing at its line of records.jsonl instead of holding a copy (a finished
HINT run keeps 1 MB here instead of a second 144 MB). The index names the size and modification
time of the records.jsonl it points into; if that file changed since, the index is ignored and the
documents are redone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from pipeline.errors import OutputError, RunError
from pipeline.files import atomic_write
from pipeline.run.index import INDEX_FILE, Done, RunIndex

PARTS_DIR = ".parts"
SYNC_INTERVAL = 1.0


class Journal:
    """Append-only log of finished documents, indexed by document key; holds the OUTDIR lock while
    open, and the run's on-disk index (`RunIndex`), rebuilt from the log each time it opens."""

    def __init__(self, outdir: Path, config_hash: str, records_file: Path) -> None:
        self.path = outdir / PARTS_DIR / f"{config_hash}.jsonl"
        self.records_file = records_file
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = _lock_outdir(outdir)
            self.index = RunIndex(self.path.parent / INDEX_FILE)
            self.done = self.index.done
            self._load()
            self._handle = self.path.open("ab")
        except OSError as exc:
            raise OutputError(f"{outdir}: cannot write: {exc.strerror or exc}") from exc
        self._synced_at = time.monotonic()

    def _load(self) -> None:
        if not self.path.exists():
            return
        good, records_identity = 0, None
        with self.path.open("rb") as handle:
            for line in handle:
                parsed = _parse(line, good)
                if parsed is None:
                    break
                good += len(line)
                if isinstance(parsed, dict):
                    records_identity = parsed
                    continue
                key, done = parsed
                if not done.in_records or records_identity == _identity(self.records_file):
                    self.done.add(key, done)
        if good < self.path.stat().st_size:
            os.truncate(self.path, good)

    def append(self, doc_key: str, record_line: str, keys: Iterable[str], usage: dict[str, int] | None,
               counts: tuple[int, int, int], warnings: tuple[str, ...] = (), path: str | None = None) -> None:
        """Add a finished document; it survives a kill of this process once this returns."""
        header = _header(doc_key, sorted(keys), usage, counts, warnings, path)
        record = record_line.encode()
        try:
            offset = self._handle.tell()
            self._handle.write(header + b"\t" + record + b"\n")
            self._handle.flush()
            if time.monotonic() - self._synced_at >= SYNC_INTERVAL:
                self._sync()
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write: {exc.strerror or exc}") from exc
        self.done.add(doc_key, Done(offset + len(header) + 1, len(record), tuple(sorted(keys)), usage, counts,
                                    warnings, path))

    @contextlib.contextmanager
    def reader(self) -> Iterator[Callable[[Done], str]]:
        """A function giving a finished document's record JSON, from the journal or records.jsonl."""
        with self.path.open("rb") as journal, _open_if_exists(self.records_file) as records:

            def read(done: Done) -> str:
                source = records if done.in_records else journal
                source.seek(done.offset)
                return str(source.read(done.length).decode())

            yield read

    def compact(self) -> None:
        """Replace the journal by an index into the records.jsonl just written (see the module doc),
        from the places `RunIndex.place` noted."""
        identity = json.dumps(_identity(self.records_file), separators=(",", ":"))

        def lines() -> Iterator[str]:
            yield identity + "\n"
            for doc_key, offset, length, path in self.index.placed():
                done = self.done[doc_key]
                header = _header(doc_key, list(done.keys), done.usage, done.counts, done.warnings, path,
                                 at=(offset, length))
                yield header.decode() + "\n"

        self._handle.close()
        atomic_write(self.path, lines())
        self._handle = self.path.open("ab")

    def _sync(self) -> None:
        os.fsync(self._handle.fileno())
        self._synced_at = time.monotonic()

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a full disk was reported by append; flushed lines stay
            self._sync()
        with contextlib.suppress(OSError):  # ... and the part of a line it could not flush is dropped here
            self._handle.close()
        self.index.close()
        self._lock.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _header(doc_key: str, keys: list[str], usage: dict[str, int] | None, counts: tuple[int, int, int],
            warnings: tuple[str, ...] = (), path: str | None = None, at: tuple[int, int] | None = None) -> bytes:
    fields: dict[str, Any] = {"doc": doc_key, "keys": keys, "usage": usage, "n": list(counts)}
    if warnings:
        fields["w"] = list(warnings)
    if path is not None:
        fields["p"] = path
    if at is not None:
        fields["at"] = list(at)
    return json.dumps(fields, separators=(",", ":")).encode()


def _identity(path: Path) -> dict[str, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return {"records_size": stat.st_size, "records_mtime_ns": stat.st_mtime_ns}


def _open_if_exists(path: Path) -> Any:
    return path.open("rb") if path.exists() else contextlib.nullcontext()


def _lock_outdir(outdir: Path) -> BinaryIO:
    """An exclusive lock on OUTDIR for the run, so two runs never interleave one journal."""
    handle = (outdir / PARTS_DIR / "lock").open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RunError(f"{outdir}: another trialstruct run is writing this output directory") from None
    return handle


def _parse(line: bytes, offset: int) -> tuple[str, Done] | dict[str, Any] | None:
    """A complete journal line as (document key, Done), an index's records identity, or None for a
    torn or garbled line."""
    if not line.endswith(b"\n"):
        return None
    head, tab, record = line.partition(b"\t")
    try:
        header: dict[str, Any] = json.loads(head)
        if "records_size" in header:
            return header
        counts, warnings = _summary(header, record)
        keys, usage, path = tuple(header["keys"]), header["usage"], header.get("p")
        if not tab:
            offset_in_records, length = header["at"]
            return header["doc"], Done(offset_in_records, length, keys, usage, counts, warnings, path, in_records=True)
        json.loads(record)
        return header["doc"], Done(offset + len(head) + 1, len(record) - 1, keys, usage, counts, warnings, path)
    except (ValueError, KeyError, TypeError):
        return None


def _summary(header: dict[str, Any], record_line: bytes) -> tuple[tuple[int, int, int], tuple[str, ...]]:
    """(criteria, entities, warnings) counts and warning texts, from the header, or from the record
    for a line journaled before headers carried them."""
    if "n" in header:
        criteria, entities, warnings = header["n"]
        return (criteria, entities, warnings), tuple(header.get("w", ()))
    record = json.loads(record_line)
    counts = len(record["criteria"]), sum(len(c["entities"]) for c in record["criteria"]), len(record["warnings"])
    return counts, tuple(record["warnings"])
