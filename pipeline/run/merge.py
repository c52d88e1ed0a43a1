"""`trialstruct merge`: combine the outputs of `--shard i/n` runs into the output of one whole run.

Each shard wrote `positions.json`, the position among all inputs of each of its output lines, so
the shards' records and errors interleave back into input order: merging the n shards gives the
same records.jsonl as one unsharded run.
"""

from __future__ import annotations

import heapq
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.cache.recording import KEYS_FILE
from pipeline.errors import OutputError, RunError
from pipeline.files import atomic_write, read_json, write_json
from pipeline.run.outputs import ERRORS, MANIFEST, POSITIONS, RECORDS

COMPLETE_RUN = "not the output directory of a complete `trialstruct run`"


def merge(parts: list[Path], out: Path) -> dict[str, Any]:
    """Write the merged outputs of shard directories `parts` into `out`; returns its manifest."""
    try:
        manifests = [read_json(part / MANIFEST, COMPLETE_RUN) for part in parts]
        positions = [read_json(part / POSITIONS, COMPLETE_RUN) for part in parts]
    except OutputError as exc:
        raise RunError(str(exc)) from None
    check_shards(parts, manifests)
    out.mkdir(parents=True, exist_ok=True)
    for name, kind in ((RECORDS, "records"), (ERRORS, "errors")):
        streams = [_numbered(part / name, pos[kind]) for part, pos in zip(parts, positions, strict=True)]
        atomic_write(out / name, (line for _, line in heapq.merge(*streams)))
    keys = sorted({key for part in parts for key in (part / KEYS_FILE).read_text(encoding="utf-8").split()})
    atomic_write(out / KEYS_FILE, (f"{key}\n" for key in keys))
    kinds = ("records", "errors")
    write_json(out / POSITIONS, {kind: sorted(n for pos in positions for n in pos[kind]) for kind in kinds}, None)
    manifest = merged_manifest(manifests, len(keys))
    write_json(out / MANIFEST, manifest)
    return manifest


def check_shards(parts: list[Path], manifests: list[dict[str, Any]]) -> None:
    """The parts must be complete shards of one run (same inputs and settings), each exactly once."""
    for part, manifest in zip(parts, manifests, strict=True):
        if manifest.get("status") != "complete":
            raise RunError(f"{part}: the run was interrupted; rerun it to finish before merging")
        if not manifest.get("shard"):
            raise RunError(f"{part}: not the output of a `--shard i/n` run")
    first = manifests[0]
    for part, manifest in zip(parts, manifests, strict=True):
        for field in ("config_hash", "inputs"):
            if manifest[field] != first[field]:
                raise RunError(f"{part}: {field} differs from {parts[0]}'s; shards must come from one run")
    count = first["shard"]["count"]
    seen = Counter(m["shard"]["index"] for m in manifests)
    if {m["shard"]["count"] for m in manifests} != {count}:
        raise RunError("the parts were split into different numbers of shards")
    if duplicated := sorted(i for i, n in seen.items() if n > 1):
        raise RunError(f"shard {duplicated[0]}/{count} given more than once")
    if missing := sorted(set(range(1, count + 1)) - set(seen)):
        raise RunError(f"missing shard(s) {', '.join(f'{i}/{count}' for i in missing)}")


def _numbered(path: Path, positions: list[int]) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        count = sum(1 for _ in handle)
    if count != len(positions):
        raise RunError(f"{path}: {count} lines but {POSITIONS} lists {len(positions)}")
    with path.open(encoding="utf-8", newline="") as handle:
        yield from zip(positions, handle, strict=True)


def _summed(dicts: list[dict[str, int]]) -> dict[str, int]:
    return {name: sum(d[name] for d in dicts) for name in dicts[0]}


def merged_manifest(manifests: list[dict[str, Any]], keys: int) -> dict[str, Any]:
    first = manifests[0]
    shards = sorted(manifests, key=lambda m: m["shard"]["index"])
    cache = {**first["cache"], "hits": sum(m["cache"]["hits"] for m in manifests),
             "misses": sum(m["cache"]["misses"] for m in manifests), "keys": keys}
    return {
        **first,
        "run_id": uuid.uuid4().hex,
        "started": min(m["started"] for m in manifests),
        "seconds": max(m["seconds"] for m in manifests),
        "docs_per_second": None,
        "shard": None,
        "merged_from": [{"shard": f"{m['shard']['index']}/{m['shard']['count']}", "run_id": m["run_id"],
                         "seconds": m["seconds"]} for m in shards],
        "counts": _summed([m["counts"] for m in manifests]),
        "usage": _summed([m["usage"] for m in manifests]),
        "warnings": dict(sum((Counter(m.get("warnings", {})) for m in manifests), Counter()).most_common()),
        "cache": cache,
    }
