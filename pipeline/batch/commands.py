"""`trialstruct batch submit|status|collect|cancel`: a run through the OpenAI Batch API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from pipeline.batch.state import BatchState
from pipeline.options import config_from, config_options

batch_app = typer.Typer(help="Run through the OpenAI Batch API (half price, answers within 24 h).",
                        no_args_is_help=True)
OutDir = Annotated[Path, typer.Argument(help="The output directory given to `batch submit`.")]
ApiKey = Annotated[str | None, typer.Option("--api-key", help="API key (better: OPENAI_API_KEY).",
                                            show_default=False)]


@batch_app.command()
@config_options()
def submit(
    inputs: Annotated[list[Path], typer.Argument(help="Files or directories (.txt .md .json .jsonl .csv).")],
    outdir: Annotated[Path, typer.Option("-o", "--outdir", help="Output directory (state in OUTDIR/batch/).")],
    config_file: Annotated[Path | None, typer.Option("--config", help="TOML settings file.")] = None,
    **settings: Any,
) -> None:
    """Send every model request the inputs need and the cache cannot answer as Batch API batches.

    Rerunning it is safe: it finishes an interrupted upload or batch creation and sends nothing twice.
    """
    from pipeline.batch.flow import submit as submit_inputs

    progress = submit_inputs(inputs, outdir, config_from(settings, config_file, None))
    _report(progress, outdir)


@batch_app.command()
def status(
    outdir: OutDir,
    wait: Annotated[bool, typer.Option("--wait", help="Poll until every batch has finished.")] = False,
    poll_max: Annotated[float, typer.Option(help="Longest pause between polls, in seconds.", min=0)] = 60.0,
    api_key: ApiKey = None,
) -> None:
    """Each batch's status and request counts."""
    from pipeline.batch.flow import status as batch_status

    batch_status(outdir, api_key, wait, poll_max, report=_print_status)


@batch_app.command()
def collect(
    outdir: OutDir,
    sync_remainder: Annotated[bool, typer.Option(
        "--sync-remainder", help="Send what is left (re-asks, failed items) synchronously, not as a batch.")] = False,
    api_key: ApiKey = None,
) -> None:
    """Download finished batches and run the pipeline on their answers; send what is still missing as a
    follow-up batch; once every request is answered, write OUTDIR/records.jsonl as `run` would."""
    from pipeline.batch.flow import collect as collect_results

    _report(collect_results(outdir, api_key, sync_remainder), outdir)


@batch_app.command()
def cancel(outdir: OutDir, api_key: ApiKey = None) -> None:
    """Cancel the batches still running (their answers so far are kept; `collect` sends the rest again)."""
    from pipeline.batch.flow import cancel as cancel_batches

    typer.echo(f"cancelling {cancel_batches(outdir, api_key)} batch(es)")


def _report(progress: Any, outdir: Path) -> None:
    err = Console(stderr=True)
    if progress.unknown_answers:
        err.print(f"ignored answers for {progress.unknown_answers} custom_id(s) this run never sent")
    if progress.result is None:
        err.print(f"{progress.waiting} of {progress.documents} documents wait for answers; {progress.sent} requests "
                  f"sent now, {progress.in_flight} batch(es) in flight. Next: `trialstruct batch status {outdir} "
                  f"--wait`, then `trialstruct batch collect {outdir}`")
        return
    result = progress.result
    err.print(f"done: {result.counts.records} records, {len(result.failures)} errors -> {outdir / 'records.jsonl'}")
    if result.failures:
        raise typer.Exit(1)


def _print_status(state: BatchState) -> None:
    from rich.table import Table

    table = Table("file", "batch", "status", "completed", "failed", "total")
    for entry in state.files:
        counts = entry.request_counts
        table.add_row(entry.name, entry.batch_id or "-", entry.status or "not sent",
                      *(str(counts.get(k, "-")) for k in ("completed", "failed", "total")))
    Console(stderr=True).print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(batch_app, name="batch")
