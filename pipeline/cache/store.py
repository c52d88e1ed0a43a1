"""The model-call store: one SQLite file in WAL mode, shared by threads and processes.

WAL lets readers proceed while one writer commits; each `put` is its own transaction, so a
crash loses at most the calls still in flight. Every thread (and every forked process) gets its
own connection, because a SQLite connection must not be shared across them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.cache.keys import cache_key, canonical_json
from pipeline.config import CacheMode
from pipeline.errors import EXIT_FAILED, CacheError

BUSY_TIMEOUT_SECONDS = 60.0
DB_NAME = "models.sqlite3"
SCHEMA = "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, entry TEXT NOT NULL) WITHOUT ROWID"

_COLLECTED: ContextVar[tuple[set[str], ...]] = ContextVar("collected_cache_keys", default=())


@contextmanager
def collect_keys() -> Iterator[set[str]]:
    """Gather the keys looked up or stored in this context (a run records them per document).

    Collectors nest: a key used inside an inner block is also given to every enclosing one.
    """
    keys: set[str] = set()
    token = _COLLECTED.set((*_COLLECTED.get(), keys))
    try:
        yield keys
    finally:
        _COLLECTED.reset(token)



class CacheMiss(CacheError):
    """An offline run needed a model call that is not cached (that document fails, the run goes on)."""

    exit_code = EXIT_FAILED

    def __init__(self, key: str, request: dict[str, Any] | None = None) -> None:
        self.key = key
        what = f"model call {key[:16]}"
        if request and request.get("model"):
            what += f" (model {request['model']!r})"
        super().__init__(
            f"{what} is not in the cache and --offline forbids calling the model; record it by rerunning "
            "without --offline, or import a recording with `trialstruct cache import FILE.jsonl`"
        )


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ModelCache:
    """Validated model answers by key; `mode` decides whether reads and writes happen at all.

    The file is opened on first use, so a run whose backend never calls a model never creates it.
    """

    def __init__(self, path: Path | None, mode: CacheMode = CacheMode.READWRITE) -> None:
        if path is None and mode is not CacheMode.OFF:
            raise ValueError("a cache path is required unless the mode is 'off'")
        self.path = path
        self.mode = mode
        self.used_keys: set[str] = set()
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection; a forked child opens its own instead of reusing the parent's."""
        held = getattr(self._local, "held", None)
        if held is not None and held[0] == os.getpid():
            return held[1]
        if self.path is None:
            raise CacheError("the cache is off (--no-cache): nothing can be read or stored")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._open(self.path)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise CacheError(f"{self.path}: cannot open the model cache ({exc})") from exc
        self._local.held = (os.getpid(), conn)
        with self._lock:
            self._connections.append(conn)
        return conn

    def _open(self, path: Path) -> sqlite3.Connection:
        """A connection in WAL mode with the table made, retried while another process holds the lock.

        Switching a new database to WAL takes an exclusive lock that SQLite's busy timeout does not
        wait for, so several processes opening a fresh cache at once can see 'database is locked'.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        while True:
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(SCHEMA)
                return conn
            except sqlite3.OperationalError as exc:
                conn.close()
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _use(self, key: str) -> None:
        for collected in _COLLECTED.get():
            collected.add(key)
        with self._lock:
            self.used_keys.add(key)

    def _count(self, hit: bool, key: str) -> None:
        self._use(key)
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry, or None; in offline mode a miss raises CacheMiss instead."""
        if self.mode in (CacheMode.REFRESH, CacheMode.OFF):
            self._count(False, key)
            return None
        entry = self.lookup(key)
        self._count(entry is not None, key)
        if entry is None and self.mode is CacheMode.OFFLINE:
            raise CacheMiss(key)
        return entry

    def lookup(self, key: str) -> dict[str, Any] | None:
        """Read one entry whatever the mode (for export and inspection)."""
        if self.path is None:
            return None
        row = self._connection().execute("SELECT entry FROM entries WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Store a validated success; `entry["request"]` must be the parts the key was made from."""
        if self.mode in (CacheMode.OFFLINE, CacheMode.OFF):
            return
        self.store([(key, entry)])
        self._use(key)

    def store(self, items: Iterable[tuple[str, dict[str, Any]]]) -> int:
        """Write entries in one transaction whatever the mode (import uses this); returns how many.

        Threads of one process take turns here: SQLite's busy handler would otherwise make a
        colliding writer sleep (up to 100 ms a time) instead of simply waiting its turn.
        """
        rows = [(key, canonical_json(_checked(key, entry))) for key, entry in items]
        conn = self._connection()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR REPLACE INTO entries (key, entry) VALUES (?, ?)", rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return len(rows)

    def entries(self, keys: Iterable[str] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """Entries sorted by key: all of them, or those of `keys` that are present."""
        if self.path is None:
            return
        conn = self._connection()
        if keys is None:
            for key, text in conn.execute("SELECT key, entry FROM entries ORDER BY key"):
                yield key, json.loads(text)
            return
        for key in sorted(set(keys)):
            entry = self.lookup(key)
            if entry is not None:
                yield key, entry

    def count(self) -> int:
        if self.path is None:
            return 0
        return self._connection().execute("SELECT count(*) FROM entries").fetchone()[0]

    def clear(self) -> int:
        """Delete every entry; returns how many there were."""
        removed = self.count()
        if self.path is not None:
            self._connection().execute("DELETE FROM entries")
        return removed

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> ModelCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _checked(key: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Refuse an entry whose request does not hash to its key, so every stored entry can be re-verified."""
    request = entry.get("request") if isinstance(entry, dict) else None
    if request is None:
        raise CacheError(f"cache entry {key[:16]} has no 'request' (the key parts)")
    if cache_key(request) != key:
        raise CacheError(f"cache entry {key[:16]}: its request hashes to {cache_key(request)[:16]}, not to its key")
    return entry if "created" in entry else {**entry, "created": _utc_now()}


def default_cache_dir() -> Path:
    """Per-user default: $XDG_CACHE_HOME/trialstruct, else ~/.cache/trialstruct."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "trialstruct"
