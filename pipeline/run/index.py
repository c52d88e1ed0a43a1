"""A run's bookkeeping on disk, so its memory does not grow with its input.

A registry run has half a million documents. Keeping even a few hundred bytes about each in Python
objects (which are done, which ids were seen, the inputs in order for the final assembly) grows a
run by hundreds of megabytes. These tables live instead in one SQLite file, `OUTDIR/.parts/run.sqlite`,
whose page cache is bounded (a few MB) however many rows it holds.

The file is scratch: it is created afresh by each run (under the OUTDIR lock) from the journal,
which stays the only durable record, so it is written without fsync or a rollback journal and
deleted when the run ends.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import OutputError
from pipeline.run.plan import Planned

INDEX_FILE = "run.sqlite"
_encode = json.JSONEncoder(separators=(",", ":")).encode

_TABLES = """
CREATE TABLE done (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE ids (doc_id TEXT PRIMARY KEY, path TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE inputs (position INTEGER PRIMARY KEY, key TEXT NOT NULL, doc_id TEXT NOT NULL, path TEXT NOT NULL);
CREATE TABLE usage (doc_id TEXT NOT NULL, value TEXT NOT NULL);
CREATE TABLE cache_keys (key TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE placed (
    key TEXT NOT NULL, position INTEGER NOT NULL, line_offset INTEGER NOT NULL, length INTEGER NOT NULL,
    path TEXT NOT NULL
);
"""


class RunIndex:
    """The tables of one run: finished documents by key, first path by doc_id, the inputs in order,
    the cache keys the records used, and where each record was placed in records.jsonl."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.unlink(missing_ok=True)
        self.db = _Database(sqlite3.connect(path, isolation_level=None), path)
        self.db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _TABLES)
        self.db.execute("BEGIN")  # one transaction for the whole run: nothing here needs to survive a crash
        self.done = DoneTable(self.db)
        self.first_paths = FirstPaths(self.db)

    def add_input(self, planned: Planned) -> None:
        """Remember a document to assemble, in input order (failed inputs are kept by the runner)."""
        self.db.execute("INSERT INTO inputs VALUES (?, ?, ?, ?)",
                        (planned.position, planned.key, planned.doc_id, planned.path))

    def inputs(self) -> Iterator[Planned]:
        """The documents added, in input order, read back a row at a time."""
        rows = self.db.execute("SELECT position, key, doc_id, path FROM inputs ORDER BY position")
        for position, key, doc_id, path in rows:
            yield Planned(position, key=key, doc_id=doc_id, path=path)

    def add_cache_keys(self, keys: Iterable[str]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO cache_keys VALUES (?)", ((key,) for key in keys))

    def cache_keys(self) -> tuple[int, Iterator[str]]:
        """How many distinct cache keys were added, and the keys in sorted order."""
        (count,) = self.db.execute("SELECT count(*) FROM cache_keys").fetchone()
        return count, (key for (key,) in self.db.execute("SELECT key FROM cache_keys ORDER BY key"))

    def add_usage(self, doc_id: str, usage: dict[str, int]) -> None:
        self.db.execute("INSERT INTO usage VALUES (?, ?)", (doc_id, _encode(usage)))

    def usage(self) -> Iterator[tuple[str, str]]:
        """(doc_id, usage as compact JSON) in the order added."""
        return iter(self.db.execute("SELECT doc_id, value FROM usage ORDER BY rowid"))

    def place(self, planned: Planned, offset: int, length: int) -> None:
        """Note where a record was written in records.jsonl (what `Journal.compact` indexes)."""
        self.db.execute("INSERT INTO placed VALUES (?, ?, ?, ?, ?)",
                        (planned.key, planned.position, offset, length, planned.path))

    def placed(self) -> Iterator[tuple[str, int, int, str]]:
        """(document key, offset, length, path) of each record, in records.jsonl order."""
        return iter(self.db.execute("SELECT key, line_offset, length, path FROM placed ORDER BY rowid"))

    def placed_positions(self) -> Iterator[int]:
        """The input position of each record, in records.jsonl order."""
        return (position for (position,) in self.db.execute("SELECT position FROM placed ORDER BY rowid"))

    def close(self) -> None:
        self.db.close()
        self.path.unlink(missing_ok=True)


class _Database:
    """A connection whose failures (a full disk above all) are the run's output errors, one line each."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.connection = connection
        self.path = path

    def execute(self, sql: str, parameters: Iterable[Any] = ()) -> sqlite3.Cursor:
        with self._reported():
            return self.connection.execute(sql, tuple(parameters))

    def executemany(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> sqlite3.Cursor:
        with self._reported():
            return self.connection.executemany(sql, rows)

    def executescript(self, script: str) -> sqlite3.Cursor:
        with self._reported():
            return self.connection.executescript(script)

    def close(self) -> None:
        self.connection.close()

    @contextmanager
    def _reported(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            full = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
            reason = os.strerror(errno.ENOSPC) if full else str(exc)
            raise OutputError(f"{self.path}: cannot write the run index: {reason}") from exc


@dataclass(frozen=True, slots=True)
class Done:
    """Where a finished document's record sits (journal, or records.jsonl once compacted), what
    producing it used, and its counts (criteria, entities, warnings)."""

    offset: int
    length: int
    keys: tuple[str, ...]
    usage: dict[str, int] | None
    counts: tuple[int, int, int]
    warnings: tuple[str, ...] = ()
    path: str | None = None  # the source path the record carries
    in_records: bool = False

    @classmethod
    def decode(cls, value: str) -> Done:
        offset, length, keys, usage, counts, warnings, path, in_records = json.loads(value)
        return cls(offset, length, tuple(keys), usage, tuple(counts), tuple(warnings), path, in_records)

    def encode(self) -> str:
        return _encode([self.offset, self.length, self.keys, self.usage, self.counts, self.warnings, self.path,
                        self.in_records])  # fmt: skip


class DoneTable:
    """Finished documents by key (the journal's entries); the first entry for a key wins."""

    def __init__(self, db: _Database) -> None:
        self.db = db

    def add(self, key: str, done: Done) -> None:
        self.db.execute("INSERT OR IGNORE INTO done VALUES (?, ?)", (key, done.encode()))

    def get(self, key: str) -> Done | None:
        row = self.db.execute("SELECT value FROM done WHERE key = ?", (key,)).fetchone()
        return None if row is None else Done.decode(row[0])

    def __getitem__(self, key: str) -> Done:
        done = self.get(key)
        if done is None:
            raise KeyError(key)
        return done

    def __contains__(self, key: object) -> bool:
        return self.db.execute("SELECT 1 FROM done WHERE key = ?", (key,)).fetchone() is not None

    def __len__(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM done").fetchone()[0])


class FirstPaths:
    """The path each doc_id was first read from (to report a duplicate id with where it came first)."""

    def __init__(self, db: _Database) -> None:
        self.db = db

    def claim(self, doc_id: str, path: str) -> str | None:
        """Record `doc_id` as read from `path`; returns the earlier path if the id was seen before."""
        if self.db.execute("INSERT OR IGNORE INTO ids VALUES (?, ?)", (doc_id, path)).rowcount:
            return None
        return str(self.db.execute("SELECT path FROM ids WHERE doc_id = ?", (doc_id,)).fetchone()[0])
