"""Recordings as cassettes: record an evaluation against a real model once, replay it offline in CI.

`trialstruct eval ... --record evals/recordings/NAME.jsonl` exports the cache entries the run used
(sorted JSONL, see `pipeline.cache.recording`) and writes `NAME.meta.json` beside it: the backend,
model and prompt (name, version, hash) the answers came from, and the command that made it.
`trialstruct eval ... --replay evals/recordings/NAME.jsonl` imports the entries into a scratch
cache and evaluates offline, so no model runs and no network is used.

When a replay misses answers, the gate uses the meta file to say why in one line: the prompt
changed since the recording (re-record it), or something else changed the requests.
One recording per gold subset, backend, model and prompt: `recording_name` gives the file name.
"""

from __future__ import annotations

import json
import re
import shlex
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.files import atomic_write

RECORDINGS = Path("evals/recordings")


def meta_path(recording: Path) -> Path:
    return recording.with_name(f"{recording.stem}.meta.json")


def recording_name(identity: dict[str, Any], subset: str | None = None) -> Path:
    """The conventional path: evals/recordings/<subset>--<backend>--<model>--<prompt>.jsonl (safe characters only)."""
    prompt = identity.get("prompt") or {}
    parts = [subset or "gold", identity["backend"], identity.get("model") or "default", prompt.get("name") or "none"]
    return RECORDINGS / ("--".join(re.sub(r"[^A-Za-z0-9._-]+", "_", str(part)) for part in parts) + ".jsonl")


def write_meta(recording: Path, identity: dict[str, Any], command: str, entries: int) -> None:
    meta = {"run": identity, "entries": entries, "command": command}
    atomic_write(meta_path(recording), json.dumps(meta, indent=2, sort_keys=True) + "\n")


def read_meta(recording: Path | None) -> dict[str, Any] | None:
    """The meta file of a recording, or None when it has none (recordings made before cassettes)."""
    if recording is None or not meta_path(recording).is_file():
        return None
    try:
        meta = json.loads(meta_path(recording).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{meta_path(recording)}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return meta if isinstance(meta, dict) else None


@contextmanager
def replaying(recording: Path, cache_dir: str | None) -> Iterator[str]:
    """Import `recording` into `cache_dir` (a scratch directory when None) and yield that directory."""
    from pipeline.cache import CacheMode, ModelCache
    from pipeline.cache.recording import import_recording
    from pipeline.cache.store import DB_NAME

    with tempfile.TemporaryDirectory(prefix="trialstruct-replay-") as scratch:
        directory = cache_dir or scratch
        with ModelCache(Path(directory).expanduser() / DB_NAME, CacheMode.READWRITE) as cache:
            import_recording(cache, recording)
        yield directory


def eval_command_line(
    gold: Path,
    *,
    docs: str | None,
    config_file: Path | None,
    settings: dict[str, Any],
    extra: list[str],
) -> str:
    """`trialstruct eval ...` with the given choices, quoted for a POSIX shell (cache and credentials left out)."""
    words = ["trialstruct", "eval", "--gold", str(gold)]
    if docs:
        words += ["--docs", docs]
    if config_file:
        words += ["--config", str(config_file)]
    for name, value in settings.items():
        if value is not None and name not in ("cache_dir", "cache_mode", "api_key"):
            shown = _without_credentials(value) if name == "base_url" else str(getattr(value, "value", value))
            words += [f"--{name.replace('_', '-')}", shown]
    return shlex.join(words + extra)


def _without_credentials(url: str) -> str:
    """An endpoint URL minus user:password and query (where tokens hide), as the cache key names it."""
    from pipeline.cache.keys import endpoint_identity
    from pipeline.config import RunConfig

    return endpoint_identity(RunConfig(base_url=url)) or url


def stale_line(
    misses: list[str], current_hash: str | None, recorded_hash: str | None, recording: str, command: str
) -> str:
    """The one line an offline replay with missing answers fails with."""
    if current_hash is not None and recorded_hash is not None and current_hash != recorded_hash:
        return f"prompt changed, recording stale: run {command}"
    return (f"recording incomplete: {len(misses)} document(s) need model calls that are not in {recording} "
            f"({', '.join(misses[:5])}{' ...' if len(misses) > 5 else ''}); the prompt is unchanged, so settings "
            f"or code changed the requests: run {command}")
