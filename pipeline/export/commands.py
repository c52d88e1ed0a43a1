"""The `trialstruct export` command: a run's records as flat CSV or Parquet tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer


def export(
    outdir: Annotated[Path, typer.Argument(help="Run directory holding records.jsonl (or a .jsonl file).")],
    fmt: Annotated[str, typer.Option("--format", help="csv, or parquet (needs the 'parquet' extra).")] = "csv",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Folder for the tables (default: OUTDIR/tables).")
    ] = None,
) -> None:
    """Write documents, criteria and entities as flat tables (columns in the README, "Exports")."""
    from pipeline.errors import ConfigError
    from pipeline.export.write import Format, export_tables

    if fmt not in ("csv", "parquet"):
        raise ConfigError(f"--format must be csv or parquet, not {fmt!r}")
    folder = output or (outdir if outdir.is_dir() else outdir.parent) / "tables"
    counts = export_tables(outdir, folder, cast(Format, fmt))
    sizes = ", ".join(f"{name} {n}" for name, n in counts.items())
    typer.echo(f"wrote {folder}/{{{','.join(counts)}}}.{fmt}: {sizes} rows")


def register(app: typer.Typer) -> None:
    """Add `export` to the trialstruct CLI."""
    app.command("export")(export)
