"""Recordings: cache entries as sorted JSONL, small enough to commit so CI replays evals with no model.

One line per entry, `{"key": ..., "entry": ...}` (the entry in canonical JSON), lines sorted by key:
the same entries always give the same bytes, and a prompt change shows up as a readable diff.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from pipeline.cache.keys import canonical_json
from pipeline.cache.store import ModelCache
from pipeline.errors import CacheError
from pipeline.files import atomic_write

KEYS_FILE = "cache-keys.txt"  # written by every run beside manifest.json: the entries its records came from


def run_keys(outdir: Path) -> list[str]:
    """The cache keys a finished run used, from the `cache-keys.txt` it wrote next to manifest.json."""
    path = outdir / KEYS_FILE
    if not path.is_file():
        raise CacheError(f"{path}: missing; is {outdir} the output directory of a `trialstruct run`?")
    return sorted({line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()})


def export_recording(cache: ModelCache, keys: Iterable[str] | None, path: Path) -> int:
    """Write the entries of `keys` (all when None) to `path`; every key must be present."""
    wanted = None if keys is None else sorted(set(keys))
    found = list(cache.entries(wanted))
    if wanted is not None and len(found) < len(wanted):
        missing = sorted(set(wanted) - {key for key, _ in found})
        shown = ", ".join(k[:16] for k in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise CacheError(f"{len(missing)} of {len(wanted)} keys are not in {cache.path}: {shown}")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (f'{{"key":"{key}","entry":{canonical_json(entry)}}}\n' for key, entry in found))
    return len(found)


def read_recording(path: Path) -> list[tuple[str, dict]]:
    """Parse a recording; a bad line raises CacheError naming the file and line."""
    if not path.is_file():
        raise CacheError(f"{path}: no such recording")
    items = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                items.append((item["key"], item["entry"]))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise CacheError(f"{path}:{number}: not a recording line ({exc})") from exc
    return items


def import_recording(cache: ModelCache, path: Path) -> int:
    """Store every entry of a recording (verifying each key against its request); returns how many."""
    items = read_recording(path)
    try:
        return cache.store(items)
    except CacheError as exc:
        raise CacheError(f"{path}: {exc}") from exc
