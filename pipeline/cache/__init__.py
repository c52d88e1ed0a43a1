"""Content-addressed cache of validated model answers, for cheap reruns and model-free replay.

A call is looked up by `cache_key(parts)`, where the parts are everything that can change the
answer (see `keys.call_parts`). Only validated successes are stored; failures and re-ask
intermediates never are. `open_cache(config)` picks the file and the mode from the run config.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from pipeline.cache.keys import cache_key, call_parts, canonical_json, endpoint_identity
from pipeline.cache.store import (
    DB_NAME,
    CacheError,
    CacheMiss,
    ModelCache,
    collect_keys,
    default_cache_dir,
)
from pipeline.config import CacheMode, RunConfig

__all__ = [
    "CacheError",
    "CacheMiss",
    "CacheMode",
    "ModelCache",
    "cache_key",
    "cache_path",
    "call_parts",
    "canonical_json",
    "collect_keys",
    "default_cache_dir",
    "endpoint_identity",
    "open_cache",
]


def cache_path(config: RunConfig) -> Path:
    """The SQLite file: --cache-dir, else TRIALSTRUCT_CACHE_DIR, else the per-user default."""
    directory = config.cache_dir or os.environ.get("TRIALSTRUCT_CACHE_DIR") or default_cache_dir()
    return Path(directory).expanduser() / DB_NAME


_OPEN: dict[tuple[int, Path | None, CacheMode], ModelCache] = {}
_OPEN_LOCK = threading.Lock()


def open_cache(config: RunConfig) -> ModelCache:
    """The process's cache object for this file and mode: the backend and the runner share one,
    so the runner reads the hit/miss counters and used keys of the calls the backend made."""
    mode = config.cache_mode
    path = None if mode is CacheMode.OFF else cache_path(config)
    with _OPEN_LOCK:
        key = (os.getpid(), path, mode)
        if key not in _OPEN:
            _OPEN[key] = ModelCache(path, mode)
        return _OPEN[key]
