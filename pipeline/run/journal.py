"""Resume journal: one line per finished document, so a killed run loses at most the documents in
flight.

Each line is flushed to the operating system as soon as the document is done, which is all a
SIGKILL-ed process needs; the file is fsync'ed at most once a second (and on close), so a power
loss costs at most a second of finished documents, which the rerun redoes.

`OUTDIR/.parts/<config hash>.jsonl` holds, per line, a small JSON header (document key, cache
keys, usage), a tab, then the record's JSON exactly as it goes into records.jsonl (compact JSON
never contains a raw tab). A rerun with the same configuration skips every document found here;
a line torn by a crash is cut off before anything is appended.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pipeline.errors import RunError

PARTS_DIR = ".parts"
SYNC_INTERVAL = 1.0


@dataclass(frozen=True)
class Done:
    """Where a finished document's record sits in the journal, and what producing it used."""

    offset: int
    length: int
    keys: tuple[str, ...]
    usage: dict[str, int]


class Journal:
    """Append-only log of finished documents, indexed by document key; holds the OUTDIR lock while open."""

    def __init__(self, outdir: Path, config_hash: str) -> None:
        self.path = outdir / PARTS_DIR / f"{config_hash}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_outdir(outdir)
        self.done: dict[str, Done] = {}
        self._load()
        self._handle = self.path.open("ab")
        self._synced_at = time.monotonic()

    def _load(self) -> None:
        if not self.path.exists():
            return
        good = 0
        with self.path.open("rb") as handle:
            for line in handle:
                parsed = _parse(line, good)
                if parsed is None:
                    break
                self.done.setdefault(*parsed)
                good += len(line)
        if good < self.path.stat().st_size:
            os.truncate(self.path, good)

    def append(self, doc_key: str, record_line: str, keys: Iterable[str], usage: dict[str, int]) -> None:
        """Add a finished document; it survives a kill of this process once this returns."""
        header = json.dumps({"doc": doc_key, "keys": sorted(keys), "usage": usage}, separators=(",", ":")).encode()
        record = record_line.encode()
        offset = self._handle.tell()
        self._handle.write(header + b"\t" + record + b"\n")
        self._handle.flush()
        if time.monotonic() - self._synced_at >= SYNC_INTERVAL:
            self._sync()
        self.done.setdefault(doc_key, Done(offset + len(header) + 1, len(record), tuple(sorted(keys)), usage))

    def record_lines(self, doc_keys: Iterable[str]) -> Iterator[str]:
        """The journaled record JSON of each key, in the order given."""
        with self.path.open("rb") as handle:
            for key in doc_keys:
                done = self.done[key]
                handle.seek(done.offset)
                yield handle.read(done.length).decode()

    def _sync(self) -> None:
        os.fsync(self._handle.fileno())
        self._synced_at = time.monotonic()

    def close(self) -> None:
        self._sync()
        self._handle.close()
        self._lock.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _lock_outdir(outdir: Path) -> BinaryIO:
    """An exclusive lock on OUTDIR for the run, so two runs never interleave one journal."""
    handle = (outdir / PARTS_DIR / "lock").open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RunError(f"{outdir}: another trialstruct run is writing this output directory") from None
    return handle


def _parse(line: bytes, offset: int) -> tuple[str, Done] | None:
    """A complete journal line as (document key, Done), or None for a torn or garbled one."""
    head, tab, record = line.partition(b"\t")
    if not tab or not record.endswith(b"\n"):
        return None
    try:
        header: dict[str, Any] = json.loads(head)
        json.loads(record)
        return header["doc"], Done(offset + len(head) + 1, len(record) - 1, tuple(header["keys"]), header["usage"])
    except (ValueError, KeyError, TypeError):
        return None
