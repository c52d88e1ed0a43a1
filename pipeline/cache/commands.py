"""`trialstruct cache ...`: export and import recordings, inspect and clear the model cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cache import CacheMode, ModelCache, cache_path
from pipeline.cache.recording import export_recording, import_recording, run_keys
from pipeline.config import build_config

CacheDir = Annotated[
    str | None, typer.Option("--cache-dir", help="Cache directory (default: TRIALSTRUCT_CACHE_DIR or per-user cache).")
]


def _open(cache_dir: str | None) -> ModelCache:
    return ModelCache(_path(cache_dir), CacheMode.READWRITE)


def _path(cache_dir: str | None) -> Path:
    return cache_path(build_config({"cache_dir": cache_dir}))


def export(
    sources: Annotated[
        list[Path], typer.Option("--for", help="A run's output directory (repeat for several runs).")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Recording to write (JSONL).")],
    cache_dir: CacheDir = None,
) -> None:
    """Write the cache entries runs used as sorted JSONL (commit it under evals/ for model-free CI)."""
    keys = {key for source in sources for key in run_keys(source)}
    with _open(cache_dir) as cache:
        count = export_recording(cache, keys, output)
    typer.echo(f"exported {count} entries to {output}")


def import_(
    recording: Annotated[Path, typer.Argument(help="A recording written by `cache export`.")],
    cache_dir: CacheDir = None,
) -> None:
    """Load a recording into the cache (each key is checked against its request)."""
    with _open(cache_dir) as cache:
        count = import_recording(cache, recording)
        where = cache.path
    typer.echo(f"imported {count} entries into {where}")


def stats(cache_dir: CacheDir = None) -> None:
    """Where the cache is and how many entries it holds."""
    path = _path(cache_dir)
    if not path.exists():
        typer.echo(f"{path}: no cache yet (0 entries); it is created by the first model call")
        return
    with ModelCache(path, CacheMode.READWRITE) as cache:
        typer.echo(f"{path}: {cache.count()} entries, {path.stat().st_size / 1e6:.1f} MB")


def clear(
    cache_dir: CacheDir = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete every cached model answer."""
    with _open(cache_dir) as cache:
        if not yes:
            typer.confirm(f"delete all {cache.count()} entries of {cache.path}?", abort=True)
        typer.echo(f"deleted {cache.clear()} entries from {cache.path}")


def register(app: typer.Typer) -> None:
    """Add the `cache` command group to the main CLI."""
    group = typer.Typer(help="Model-call cache: recordings for offline replay, stats, clear.", no_args_is_help=True)
    group.command("export")(export)
    group.command("import")(import_)
    group.command("stats")(stats)
    group.command("clear")(clear)
    app.add_typer(group, name="cache")
