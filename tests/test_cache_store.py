"""The SQLite store: modes, entry checks, and concurrent writers in threads and processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest

from pipeline.cache import (
    CacheError,
    CacheMiss,
    CacheMode,
    ModelCache,
    cache_key,
    cache_path,
    collect_keys,
    open_cache,
)
from pipeline.config import RunConfig, build_config
from pipeline.errors import ConfigError


def entry(n: int, writer: str = "w") -> tuple[str, dict]:
    request = {"model": "m", "messages": [{"role": "user", "content": f"criterion {n}"}]}
    return cache_key(request), {"request": request, "response": {"writer": writer}, "parsed": {"n": n}, "usage": {}}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "models.sqlite3"


def test_put_then_get_round_trips_and_counts(db: Path) -> None:
    key, item = entry(1)
    with ModelCache(db) as cache:
        assert cache.get(key) is None
        cache.put(key, item)
        got = cache.get(key)
        assert (cache.hits, cache.misses, cache.used_keys) == (1, 1, {key})
    assert got["parsed"] == {"n": 1} and got["request"] == item["request"]
    assert got["created"].endswith("+00:00")
    with ModelCache(db) as again:
        assert again.get(key)["parsed"] == {"n": 1}


def test_offline_miss_raises_and_offline_never_writes(db: Path) -> None:
    key, item = entry(2)
    with ModelCache(db, CacheMode.OFFLINE) as cache:
        with pytest.raises(CacheMiss, match=r"--offline.*cache import") as caught:
            cache.get(key)
        assert caught.value.key == key
        cache.put(key, item)
        assert cache.count() == 0 and cache.misses == 1


def test_refresh_ignores_reads_but_overwrites(db: Path) -> None:
    key, item = entry(3)
    with ModelCache(db) as cache:
        cache.put(key, item)
    with ModelCache(db, CacheMode.REFRESH) as cache:
        assert cache.get(key) is None
        cache.put(key, {**item, "parsed": {"n": "new"}})
    with ModelCache(db) as cache:
        assert cache.get(key)["parsed"] == {"n": "new"} and cache.count() == 1


def test_off_mode_touches_no_file(tmp_path: Path) -> None:
    cache = open_cache(RunConfig(cache_dir=str(tmp_path / "c"), cache_mode="off"))
    key, item = entry(4)
    cache.put(key, item)
    assert cache.get(key) is None and cache.path is None
    assert not (tmp_path / "c").exists()


def test_entry_must_hash_to_its_key(db: Path) -> None:
    key, item = entry(5)
    with ModelCache(db) as cache:
        with pytest.raises(CacheError, match="hashes to"):
            cache.put("0" * 64, item)
        with pytest.raises(CacheError, match="no 'request'"):
            cache.put(key, {"response": {}})
        assert cache.count() == 0


def test_location_flag_then_environment_then_user_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALSTRUCT_CACHE_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_path(RunConfig(cache_dir=str(tmp_path / "flag"))) == tmp_path / "flag" / "models.sqlite3"
    assert cache_path(RunConfig()) == tmp_path / "env" / "models.sqlite3"
    monkeypatch.delenv("TRIALSTRUCT_CACHE_DIR")
    assert cache_path(RunConfig()) == tmp_path / "xdg" / "trialstruct" / "models.sqlite3"


def test_unknown_mode_and_non_database_file_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cache_mode: Input should be 'readwrite', 'offline', 'refresh' or 'off'"):
        build_config({"cache_dir": str(tmp_path), "cache_mode": "sometimes"})
    bad = tmp_path / "models.sqlite3"
    bad.write_text("not sqlite " * 200)
    cache = open_cache(RunConfig(cache_dir=str(tmp_path)))
    with pytest.raises(CacheError, match=r"models.sqlite3: cannot open the model cache"):
        cache.get(entry(1)[0])


def test_file_is_created_on_first_use_in_wal_mode(db: Path) -> None:
    cache = ModelCache(db)
    assert not db.exists()
    cache.get(entry(1)[0])
    cache.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_threads_share_one_cache_object(db: Path) -> None:
    cache = ModelCache(db)
    items = [entry(n, "thread") for n in range(200)]

    def work(chunk: list) -> None:
        for key, item in chunk:
            cache.put(key, item)
            assert cache.get(key)["parsed"] == item["parsed"]

    threads = [threading.Thread(target=work, args=(items[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.count() == 200 and cache.hits == 200 and len(cache.used_keys) == 200
    cache.close()


def _write_many(path: str, writer: int, count: int, barrier: multiprocessing.Barrier) -> None:
    cache = ModelCache(Path(path))
    barrier.wait()
    for n in range(count):
        cache.put(*entry((writer + 1) * 100_000 + n, f"p{writer}"))
        cache.put(*entry(n % 50, "shared"))
    cache.close()


def _open_and_put(path: str, writer: int, barrier: multiprocessing.Barrier) -> None:
    barrier.wait()
    with ModelCache(Path(path)) as cache:
        cache.put(*entry(writer))


@pytest.mark.slow
def test_processes_opening_a_new_cache_at_once_all_get_in(tmp_path: Path) -> None:
    """Eight processes start on a cache that does not exist yet (a sharded run's first seconds): the
    switch to WAL mode must wait for the others, not fail with 'database is locked'. A stress test:
    without the retry in `ModelCache._open`, about one attempt in fifteen lost a process."""
    openers = 8
    context = multiprocessing.get_context("spawn")
    for attempt in range(6):
        path = tmp_path / f"fresh{attempt}" / "models.sqlite3"
        barrier = context.Barrier(openers)
        procs = [context.Process(target=_open_and_put, args=(str(path), w, barrier)) for w in range(openers)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=120)
        assert [p.exitcode for p in procs] == [0] * openers
        with ModelCache(path) as cache:
            assert cache.count() == openers


def test_processes_writing_at_once_lose_nothing(db: Path) -> None:
    writers, count = 4, 150
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(writers)
    procs = [context.Process(target=_write_many, args=(str(db), w, count, barrier)) for w in range(writers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * writers
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with ModelCache(db) as cache:
        assert cache.count() == writers * count + 50
        for w in range(writers):
            for n in range(count):
                key, item = entry((w + 1) * 100_000 + n)
                assert cache.get(key)["parsed"] == item["parsed"]
        assert all(cache.get(entry(n)[0])["response"] == {"writer": "shared"} for n in range(50))


def test_forked_child_opens_its_own_connection(db: Path) -> None:
    cache = ModelCache(db)
    cache.put(*entry(1))
    context = multiprocessing.get_context("fork")
    proc = context.Process(target=lambda: cache.put(*entry(2)))
    proc.start()
    proc.join(timeout=60)
    assert proc.exitcode == 0
    assert cache.lookup(entry(2)[0])["parsed"] == {"n": 2}
    cache.close()


def test_open_cache_shares_one_object_per_file_and_mode(tmp_path: Path) -> None:
    config = RunConfig(cache_dir=str(tmp_path))
    first = open_cache(config)
    assert open_cache(RunConfig(cache_dir=str(tmp_path), api_key="other")) is first
    assert open_cache(RunConfig(cache_dir=str(tmp_path), cache_mode="offline")) is not first


def test_collect_keys_sees_only_its_own_thread(db: Path) -> None:
    cache = ModelCache(db)
    seen: dict[int, set[str]] = {}

    def work(n: int) -> None:
        with collect_keys() as keys:
            cache.get(entry(n)[0])
            cache.put(*entry(n + 100))
        seen[n] = keys

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {n: {entry(n)[0], entry(n + 100)[0]} for n in range(3)}
    assert len(cache.used_keys) == 6
    cache.close()
