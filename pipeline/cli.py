"""The `trialstruct` command.

Heavy modules (model clients, servers, browsers) are imported inside the commands that need them,
so `trialstruct --help` stays fast. Stage packages contribute their own commands through a
`commands.py` module with `register(app)`.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from pipeline.run import RunResult

app = typer.Typer(
    name="trialstruct",
    help="Clinical-trial eligibility criteria to validated, source-grounded JSON.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

STAGE_COMMANDS = (
    "pipeline.cache.commands", "pipeline.evaluate.commands", "pipeline.review.commands", "pipeline.export.commands",
)


@app.command()
def run(
    inputs: Annotated[list[Path], typer.Argument(help="Files or directories (.txt .md .json .jsonl .csv).")],
    outdir: Annotated[Path, typer.Option("-o", "--outdir", help="Output directory.")],
    backend: Annotated[str | None, typer.Option(help="auto | rules | openai | local | none.")] = None,
    model: Annotated[str | None, typer.Option(help="Model id for the openai backend.")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint URL.")] = None,
    api_key: Annotated[str | None, typer.Option(help="API key (better: OPENAI_API_KEY).")] = None,
    model_path: Annotated[str | None, typer.Option(help="GGUF file for the local backend.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds per model request.")] = None,
    temperature: Annotated[float | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    max_tokens: Annotated[int | None, typer.Option()] = None,
    top_p: Annotated[float | None, typer.Option()] = None,
    cache_dir: Annotated[str | None, typer.Option(help="Model-call cache location.")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Replay cached model calls only.")] = False,
    refresh: Annotated[bool, typer.Option("--refresh", help="Ignore cached answers, store new ones.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")] = False,
    concurrency: Annotated[int | None, typer.Option(help="Documents in flight at once.")] = None,
    requests_per_minute: Annotated[float | None, typer.Option(help="Client-side limit on model requests.")] = None,
    tokens_per_minute: Annotated[float | None, typer.Option(help="Client-side limit on model tokens.")] = None,
    shard: Annotated[str | None, typer.Option(help="Process only shard i of n (e.g. 2/8), split by doc id.")] = None,
    id_field: Annotated[str | None, typer.Option(help="Table column holding the document id.")] = None,
    text_field: Annotated[str | None, typer.Option(help="Table column holding the criteria text.")] = None,
    max_bytes: Annotated[int | None, typer.Option(help="Largest input file accepted.")] = None,
    config_file: Annotated[Path | None, typer.Option("--config", help="TOML settings file.")] = None,
) -> None:
    """Structure every input document into OUTDIR/records.jsonl (errors.jsonl, manifest.json beside it).

    Rerunning into the same OUTDIR with the same settings skips the documents already done.
    """
    from pipeline.config import build_config
    from pipeline.errors import BackendError, CacheError, RunError
    from pipeline.extract import resolve_backend_name
    from pipeline.run import Shard
    from pipeline.run import run as run_batch

    err = Console(stderr=True)
    modes = [name for name, on in (("offline", offline), ("refresh", refresh), ("off", no_cache)) if on]
    if len(modes) > 1:
        _fail(err, "choose at most one of --offline, --refresh, --no-cache")
    flags = {k: v for k, v in locals().items() if k in _CONFIG_FLAGS}
    flags["cache_mode"] = modes[0] if modes else None
    try:
        config = build_config(flags, config_file)
        part = Shard.parse(shard) if shard else None
    except (ValueError, OSError) as exc:
        _fail(err, str(exc))
    err.print(f"backend: [bold]{resolve_backend_name(config)}[/bold]"
              + (" (auto)" if config.backend == "auto" else ""))
    try:
        result = run_batch(inputs, outdir, config, shard=part, show_progress=True)
    except (BackendError, CacheError, RunError) as exc:
        _fail(err, str(exc))
    except KeyboardInterrupt:
        _error_line("aborted; finished documents are saved, rerun the same command to resume")
        sys.stderr.flush()
        os._exit(130)  # do not wait for the model calls still in flight
    _summary(err, result, outdir)
    if result.interrupted:
        _error_line(f"interrupted: {result.finished} of {result.documents} documents are "
                    f"done and saved; rerun the same command to resume")
        raise typer.Exit(130)
    if result.offline_missing:
        names = ", ".join(f.doc_id or f.path for f in result.offline_missing[:10])
        more = f" and {len(result.offline_missing) - 10} more" if len(result.offline_missing) > 10 else ""
        _error_line(f"--offline: {len(result.offline_missing)} document(s) need model calls that are not cached: "
                    f"{names}{more}; record them by rerunning this command without --offline, or import a "
                    "recording with `trialstruct cache import FILE.jsonl`")
    raise typer.Exit(1 if result.failures else 0)


_CONFIG_FLAGS = {"backend", "model", "base_url", "api_key", "model_path", "timeout", "temperature", "seed",
                 "max_tokens", "top_p", "cache_dir", "concurrency", "requests_per_minute", "tokens_per_minute",
                 "id_field", "text_field", "max_bytes"}


def _fail(err: Console, message: str) -> None:
    _error_line(message)
    raise typer.Exit(2)


def _error_line(message: str) -> None:
    """Errors go to stderr as plain single lines (never wrapped), so they can be grepped."""
    sys.stderr.write(f"error: {' '.join(message.split())}\n")


def _summary(err: Console, result: RunResult, outdir: Path) -> None:
    from rich.table import Table

    table = Table(title="trialstruct run", show_header=False)
    counts = result.counts
    rows = [
        ("backend", result.backend),
        ("records", f"{counts.records} ({result.resumed} resumed)" if result.resumed else str(counts.records)),
        ("errors", str(len(result.failures))),
        ("criteria", str(counts.criteria)),
        ("entities", str(counts.entities)),
        ("warnings", str(counts.warnings)),
        ("model calls", f"{result.usage.calls} ({result.cache_hits} cache hits)"),
        ("tokens", str(result.usage.prompt_tokens + result.usage.completion_tokens)),
        ("seconds", f"{result.seconds:.2f}"),
        ("output", str(outdir)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    err.print(table)
    for failure in result.failures[:20]:
        _error_line(failure.line())
    if len(result.failures) > 20:
        err.print(f"... and {len(result.failures) - 20} more in {outdir / 'errors.jsonl'}")


@app.command()
def merge(
    parts: Annotated[list[Path], typer.Argument(help="Output directories of `run --shard i/n`, one per shard.")],
    outdir: Annotated[Path, typer.Option("-o", "--outdir", help="Output directory for the merged run.")],
) -> None:
    """Combine shard outputs into the output one unsharded run would have written."""
    from pipeline.errors import RunError
    from pipeline.run.merge import merge as merge_parts

    err = Console(stderr=True)
    try:
        manifest = merge_parts(parts, outdir)
    except RunError as exc:
        _fail(err, str(exc))
    counts = manifest["counts"]
    err.print(f"merged {len(parts)} shards: {counts['records']} records, {counts['errors']} errors -> {outdir}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of a TrialRecord."""
    from pipeline.schema import TrialRecord

    sys.stdout.write(json.dumps(TrialRecord.model_json_schema(), indent=2) + "\n")


@app.command()
def version() -> None:
    """Print the pipeline version."""
    from pipeline import __version__

    typer.echo(__version__)


def _register_stage_commands() -> None:
    for name in STAGE_COMMANDS:
        importlib.import_module(name).register(app)


_register_stage_commands()
