"""The `trialstruct` command.

Heavy modules (model clients, servers, browsers) are imported inside the commands that need them,
so `trialstruct --help` stays fast. Stage packages contribute their own commands through a
`commands.py` module with `register(app)`.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from pipeline.errors import EXIT_FAILED, EXIT_INTERRUPTED, TrialstructError
from pipeline.options import cache_mode_flag, config_from, config_options

if TYPE_CHECKING:
    from pipeline.config import RunConfig
    from pipeline.run import RunResult

class _Commands(TyperGroup):
    """The one place where a pipeline error becomes a line on stderr and an exit code, for every command."""

    def invoke(self, ctx: Any) -> Any:  # a typer.Context; typed loosely as typer's vendored click declares it
        try:
            return super().invoke(ctx)
        except TrialstructError as exc:
            error_line(exc.line())
            ctx.exit(exc.exit_code)


app = typer.Typer(
    name="trialstruct",
    cls=_Commands,
    help="Clinical-trial eligibility criteria to validated, source-grounded JSON.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

STAGE_COMMANDS = (
    "pipeline.cache.commands", "pipeline.evaluate.commands", "pipeline.review.commands", "pipeline.export.commands",
)


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", is_eager=True)] = False,
) -> None:
    if version:
        from pipeline import __version__

        typer.echo(f"trialstruct {__version__}")
        raise typer.Exit(0)


@app.command()
@config_options()
def run(
    inputs: Annotated[list[Path], typer.Argument(help="Files or directories (.txt .md .json .jsonl .csv).")],
    outdir: Annotated[Path, typer.Option("-o", "--outdir", help="Output directory.")],
    offline: Annotated[bool, typer.Option("--offline", help="Replay cached model calls only.")] = False,
    refresh: Annotated[bool, typer.Option("--refresh", help="Ignore cached answers, store new ones.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")] = False,
    shard: Annotated[str | None, typer.Option(help="Process only shard i of n (e.g. 2/8), split by doc id.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after the first N documents (a trial run).")] = None,
    config_file: Annotated[Path | None, typer.Option("--config", help="TOML settings file.")] = None,
    **settings: Any,
) -> None:
    """Structure every input document into OUTDIR/records.jsonl (errors.jsonl, manifest.json beside it).

    Rerunning into the same OUTDIR with the same settings skips the documents already done.
    """
    from pipeline.extract import check_backend_name
    from pipeline.run import Shard
    from pipeline.run import run as run_batch

    config = config_from(settings, config_file, cache_mode_flag(offline, refresh, no_cache))
    part = Shard.parse(shard) if shard else None
    err = Console(stderr=True)
    err.print(f"backend: [bold]{check_backend_name(config)}[/bold]" + _auto_reason(config), soft_wrap=True)
    try:
        result = run_batch(inputs, outdir, config, shard=part, show_progress=True, limit=limit)
    except KeyboardInterrupt:
        error_line("aborted; finished documents are saved, rerun the same command to resume")
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)  # do not wait for the model calls still in flight
    _summary(err, result, outdir)
    if result.interrupted_by is not None:
        name = signal.Signals(result.interrupted_by).name
        error_line(f"interrupted by {name}: {result.finished} documents are done and saved in "
                   f"{outdir / 'records.jsonl'}; rerun the same command to resume")
        raise typer.Exit(128 + result.interrupted_by)
    if result.offline_missing:
        names = ", ".join(f.doc_id or f.path for f in result.offline_missing[:10])
        more = f" and {len(result.offline_missing) - 10} more" if len(result.offline_missing) > 10 else ""
        error_line(f"--offline: {len(result.offline_missing)} document(s) need model calls that are not cached: "
                   f"{names}{more}; record them by rerunning this command without --offline, or import a "
                   "recording with `trialstruct cache import FILE.jsonl`")
    raise typer.Exit(EXIT_FAILED if result.failures else 0)


def _auto_reason(config: RunConfig) -> str:
    if config.backend != "auto":
        return ""
    if config.api_key and not (config.base_url or config.model):
        return " (auto: OPENAI_API_KEY is set but no --model or --base-url names an endpoint)"
    return " (auto)"


def error_line(message: str) -> None:
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
    if counts.warning_kinds:
        kinds = counts.warning_kinds.most_common(5)
        shown = "; ".join(f"{n} × {kind}" for kind, n in kinds)
        more = " (all in manifest.json)" if len(counts.warning_kinds) > 5 else ""
        err.print(f"warnings: {shown}{more}", soft_wrap=True, markup=False)
    for failure in result.failures[:20]:
        error_line(failure.line())
    if len(result.failures) > 20:
        err.print(f"... and {len(result.failures) - 20} more in {outdir / 'errors.jsonl'}")


@app.command()
def merge(
    parts: Annotated[list[Path], typer.Argument(help="Output directories of `run --shard i/n`, one per shard.")],
    outdir: Annotated[Path, typer.Option("-o", "--outdir", help="Output directory for the merged run.")],
) -> None:
    """Combine shard outputs into the output one unsharded run would have written."""
    from pipeline.run.merge import merge as merge_parts

    err = Console(stderr=True)
    manifest = merge_parts(parts, outdir)
    counts = manifest["counts"]
    err.print(f"merged {len(parts)} shards: {counts['records']} records, {counts['errors']} errors -> {outdir}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of a TrialRecord."""
    from pipeline.schema import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


def _register_stage_commands() -> None:
    for name in STAGE_COMMANDS:
        importlib.import_module(name).register(app)


_register_stage_commands()



def main() -> None:
    app(prog_name="trialstruct")
