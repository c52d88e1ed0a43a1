"""`trialstruct eval`: score predictions against gold (or Chia) and gate on the baseline.

Exit status: 0 scored (and the gate passed), 1 the gate failed, 2 unusable input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.errors import ConfigError
from pipeline.options import cache_mode_flag, config_options

DEFAULT_BASELINE = Path("evals/baseline.json")


def _check_modes(
    pred: Path | None, backend: str | None, chia: Path | None, record: Path | None, check: bool, update: bool
) -> None:
    if chia is not None and (backend is None or pred is not None):
        raise ConfigError("--chia needs --backend NAME (and no --pred)")
    if chia is None and (pred is None) == (backend is None):
        raise ConfigError("give exactly one of --pred RECORDS.jsonl or --backend NAME")
    if record is not None and backend is None:
        raise ConfigError("--record needs --backend NAME")
    if check and update:
        raise ConfigError("--check and --update-baseline are exclusive: update, then check in a later run")


def _report(
    gold: Path, pred: Path | None, chia: Path | None, flags: dict[str, Any], options: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """Build the report for the chosen mode and the baseline key it belongs to."""
    from pipeline.evaluate.records import load_gold, load_predictions
    from pipeline.evaluate.score import build_report, score_records

    if chia is not None:
        from pipeline.evaluate.chia_eval import evaluate_chia

        return evaluate_chia(chia, flags, **options)
    options.pop("limit", None)
    record_to = options.pop("record_to", None)
    records = load_gold(gold)
    problems: list[dict[str, str]] = []
    if pred is not None:
        predictions = load_predictions(pred)
        first = next(iter(predictions.values()), None)
        key, source = (first.provenance.backend if first else "none"), str(pred)
    else:
        from pipeline.evaluate.predict import predict_records

        predictions, key, problems = predict_records(records, flags, gold, record_to)
        source = f"backend:{key}"
    docs, info = score_records(records, predictions)
    info = {"gold": str(gold), "predictions": source, "backend": key, **info, "prediction_errors": problems}
    return build_report(docs, info=info, **options), key


@config_options()
def eval_command(
    gold: Annotated[Path, typer.Option(help="Directory of gold TrialRecord *.json files.")] = Path("evals/gold"),
    pred: Annotated[Path | None, typer.Option(help="A run's records.jsonl to score.")] = None,
    chia: Annotated[Path | None, typer.Option(help="Score entities on a Chia BRAT directory instead of gold.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full report as JSON.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write a markdown summary.")] = None,
    baseline: Annotated[Path, typer.Option(help="Baseline file for --check/--update-baseline.")] = DEFAULT_BASELINE,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if a metric fell below baseline.")] = False,
    update_baseline: Annotated[bool, typer.Option("--update-baseline", help="Rewrite this section.")] = False,
    baseline_key: Annotated[str | None, typer.Option(help="Baseline section (default: the backend name).")] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples over documents.")] = 1000,
    bootstrap_seed: Annotated[int, typer.Option(help="Seed of the bootstrap resampling.")] = 0,
    worst: Annotated[int, typer.Option(help="How many worst documents to list.")] = 5,
    limit: Annotated[int | None, typer.Option(help="With --chia: score only the first N documents.")] = None,
    record: Annotated[Path | None, typer.Option(help="Export the model calls made as a recording (JSONL).")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Replay cached model calls only.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")] = False,
    config: Annotated[Path | None, typer.Option(help="trialstruct TOML settings file.")] = None,
    **settings: Any,
) -> None:
    """Score predictions against the gold set (or Chia) and optionally gate on the baseline."""
    from pipeline.evaluate import gate
    from pipeline.evaluate.report import print_report, write_json, write_markdown

    _check_modes(pred, settings.get("backend"), chia, record, check, update_baseline)
    flags = {**settings, "cache_mode": cache_mode_flag(offline=offline, no_cache=no_cache), "config_file": config}
    options = {"resamples": resamples, "seed": bootstrap_seed, "worst": worst, "limit": limit,
               "record_to": record}
    report, key = _report(gold, pred, chia, flags, options)
    key = baseline_key or key
    print_report(report)
    if report.get("in_sample"):
        typer.echo(f"warning: {report['in_sample']['warning']}", err=True)
    if json_out:
        write_json(json_out, report)
    if markdown:
        write_markdown(markdown, report)
    if update_baseline:
        gate.update_baseline(baseline, key, report)
        typer.echo(f"baseline {baseline} section {key!r} updated")
    if check:
        failures = gate.check(gate.load_baseline(baseline), key, report, where=str(baseline))
        for line in failures:
            typer.echo(f"REGRESSION {line}", err=True)
        if failures:
            raise typer.Exit(1)
        typer.echo(f"gate passed: no metric below baseline {baseline} [{key}]")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
