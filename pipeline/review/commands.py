"""The `trialstruct review` command: write the review page, or serve it with editing (`--serve`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def review(
    outdir: Annotated[Path, typer.Argument(help="Run directory holding records.jsonl (or a .jsonl file).")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="HTML file to write (default: OUTDIR/review.html).")
    ] = None,
    gold: Annotated[Path | None, typer.Option(help="Gold directory (<doc_id>.json) to diff against.")] = None,
    compare: Annotated[Path | None, typer.Option(help="Another run directory to diff against.")] = None,
    serve: Annotated[bool, typer.Option("--serve", help="Serve the page with editing and 'save as gold'.")] = False,
    gold_dir: Annotated[Path, typer.Option(help="Serve mode: gold directory read and written.")] = Path("evals/gold"),
    host: Annotated[str, typer.Option(help="Serve mode: address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Serve mode: port (0 picks a free one).")] = 0,
    per_page: Annotated[int, typer.Option(help="Larger runs get an index page plus one page per document.")] = 200,
) -> None:
    """Review extracted records next to their source, against gold and another run."""
    from pipeline.review.page import load_comments, load_gold, load_records, write_review

    records = load_records(outdir)
    other = load_records(compare) if compare else None
    if serve:
        _serve(records, gold or gold_dir, other, host, port)
        return
    target = output or (outdir if outdir.is_dir() else outdir.parent) / "review.html"
    gold_records, comments = (load_gold(gold), load_comments(gold)) if gold else (None, None)
    written = write_review(records, target, gold_records, other, per_page, comments)
    pages = sum(1 for path in written[1:] if path.suffix == ".html")
    extra = f" (+{pages} document pages)" if pages else ""
    csv = next((f"; problems: {path}" for path in written if path.suffix == ".csv"), "")
    typer.echo(f"wrote {written[0]}{extra}: {len(records)} documents{csv}")


def _serve(records: list, gold_dir: Path, other: list | None, host: str, port: int) -> None:
    from pipeline.review.server import GoldStore, ReviewHTTPServer

    server = ReviewHTTPServer(GoldStore(records, gold_dir, other), host, port)
    typer.echo(f"serving {len(records)} documents at {server.url} (gold: {gold_dir}); Ctrl-C stops", err=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def register(app: typer.Typer) -> None:
    """Add `review` to the trialstruct CLI."""
    app.command("review")(review)
