"""`trialstruct eval`: score predictions against gold (or Chia) and gate on the baseline.

`--compare VARIANT...` scores several configurations side by side instead (`compare`);
`--record` / `--replay` make and play back recordings (`cassette`).
Exit status: 0 scored (and the gate passed), 1 the gate failed, 2 unusable input.
"""

from __future__ import annotations

from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.errors import ConfigError, TrialstructError
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
    from pipeline.evaluate.compare import gold_records, score_predictions
    from pipeline.evaluate.gate import baseline_key
    from pipeline.evaluate.records import load_predictions

    subset, docs = options.pop("subset", None), options.pop("docs", None)
    prices = options.pop("prices", None)
    if chia is not None:
        from pipeline.evaluate.chia_eval import evaluate_chia

        return evaluate_chia(chia, flags, **options)
    options.pop("limit", None)
    record_to = options.pop("record_to", None)
    records = gold_records(gold, docs)
    if pred is not None:
        from pipeline.evaluate.compare import identity_of

        predictions = load_predictions(pred)
        identity = identity_of(next(iter(predictions.values()), None))
        report = score_predictions(records, predictions, {"gold": str(gold), "predictions": str(pred),
                                                          "backend": identity["backend"], "run": identity}, options)
    else:
        from pipeline.evaluate.compare import evaluate_backend

        report = evaluate_backend(records, gold, flags, options, record_to, prices)
    return report, baseline_key(report["run"], subset)


@config_options()
def eval_command(
    variants: Annotated[list[str] | None, typer.Argument(
        metavar="VARIANT", help="With --compare: configurations to compare, e.g. prompt=extract-v1 "
        "prompt=extract-v2, model=A model=B, config=FILE.toml; key=value pairs joined by commas.")] = None,
    gold: Annotated[Path, typer.Option(help="Directory of gold TrialRecord *.json files.")] = Path("evals/gold"),
    pred: Annotated[Path | None, typer.Option(help="A run's records.jsonl to score.")] = None,
    chia: Annotated[Path | None, typer.Option(help="Score entities on a Chia BRAT directory instead of gold.")] = None,
    docs: Annotated[str | None, typer.Option(help="Score only gold documents whose doc_id matches this glob.")] = None,
    compare: Annotated[bool, typer.Option("--compare", help="Compare the VARIANTs side by side (the first is "
                                          "the base) with paired bootstrap intervals of each difference.")] = False,
    compare_dir: Annotated[Path, typer.Option(help="With --compare: where each variant's records are written "
                                              "for `trialstruct review`.")] = Path("eval-compare"),
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full report as JSON.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write a markdown summary (verdict first).")] = None,
    baseline: Annotated[Path, typer.Option(help="Baseline file for --check/--update-baseline.")] = DEFAULT_BASELINE,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if a metric fell below baseline "
                                        "(with --compare: if the last variants regressed).")] = False,
    update_baseline: Annotated[bool, typer.Option("--update-baseline", help="Rewrite this section.")] = False,
    baseline_key: Annotated[str | None, typer.Option(help="Baseline section (default: the backend name, plus "
                                                     "/model/prompt when it uses a prompt).")] = None,
    baseline_set: Annotated[str | None, typer.Option(help="Name of the gold subset, prefixed to the "
                                                     "baseline key (e.g. seeds with --docs '00*').")] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples over documents.")] = 1000,
    bootstrap_seed: Annotated[int, typer.Option(help="Seed of the bootstrap resampling.")] = 0,
    worst: Annotated[int, typer.Option(help="How many worst (or most changed) documents to list.")] = 5,
    limit: Annotated[int | None, typer.Option(help="With --chia: score only the first N documents.")] = None,
    record: Annotated[Path | None, typer.Option(help="Export the model calls made as a recording (JSONL).")] = None,
    replay: Annotated[Path | None, typer.Option(help="Replay a recording offline (imported into a scratch "
                                                "cache unless --cache-dir is given).")] = None,
    prices: Annotated[Path | None, typer.Option(help="Price table (TOML or JSON) for cost estimates. "
                                                "Environment: TRIALSTRUCT_PRICES.")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Replay cached model calls only.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")] = False,
    config: Annotated[Path | None, typer.Option(help="trialstruct TOML settings file.")] = None,
    **settings: Any,
) -> None:
    """Score predictions against the gold set (or Chia) and optionally gate on the baseline."""
    from pipeline.evaluate import gate
    from pipeline.evaluate.cassette import eval_command_line, replaying
    from pipeline.evaluate.report import print_report, write_json, write_markdown

    _check_eval_options(record, replay, offline, no_cache, compare, variants, pred, chia, update_baseline)
    if not compare:  # with --compare each variant may name its backend
        _check_modes(pred, settings.get("backend"), chia, record, check, update_baseline)
    flags = {**settings, "cache_mode": cache_mode_flag(offline=replay is not None or offline, no_cache=no_cache),
             "config_file": config}
    options = {"resamples": resamples, "seed": bootstrap_seed, "worst": worst, "limit": limit,
               "record_to": record, "subset": baseline_set, "docs": docs, "prices": prices}
    if compare:
        from pipeline.evaluate.compare import run_comparison

        if run_comparison(gold, [*(variants or [])], flags, options, compare_dir, json_out, markdown) and check:
            raise typer.Exit(1)
        return
    with replaying(replay, settings.get("cache_dir")) if replay else nullcontext(None) as replay_cache:
        if replay_cache:
            flags["cache_dir"] = replay_cache
        report, key = _report(gold, pred, chia, flags, options)
    key = baseline_key or key
    rerun = partial(eval_command_line, gold, docs=docs, config_file=config, settings=settings)
    if record is not None and pred is None and chia is None:
        from pipeline.evaluate.cassette import write_meta

        write_meta(record, report["run"], rerun(extra=["--record", str(record)]), report["recording"]["recorded"])
    if check:
        selection = ["--baseline", str(baseline), *(["--baseline-key", baseline_key] if baseline_key else []),
                     *(["--baseline-set", baseline_set] if baseline_set else [])]
        recording = _recording_path(replay, baseline, key, report, baseline_set)
        rerecord = rerun(extra=["--record", str(recording), *selection, "--check"])
        report["gate"] = gate.run_gate(gate.load_baseline(baseline), key, report, str(baseline), replay, rerecord)
    print_report(report)
    if report.get("in_sample"):
        typer.echo(f"warning: {report['in_sample']['warning']}", err=True)
    if json_out:
        write_json(json_out, report)
    if markdown:
        write_markdown(markdown, report)
    if update_baseline:
        section = gate.update_baseline(baseline, key, report, str(record or replay or "") or None)
        typer.echo(f"baseline {baseline} section {section!r} updated")
    if check:
        _echo_gate(report["gate"])


def _check_eval_options(
    record: Path | None, replay: Path | None, offline: bool, no_cache: bool, compare: bool, variants: list[str] | None,
    pred: Path | None, chia: Path | None, update: bool,
) -> None:
    if replay is not None and (record is not None or offline or no_cache):
        raise ConfigError("--replay already replays offline: drop --record, --offline and --no-cache")
    if compare and (record is not None or replay is not None):
        raise ConfigError("--compare shares the cache between variants; record or replay each variant on its own")
    if compare and (pred is not None or chia is not None or update):
        raise ConfigError("--compare runs every variant on the gold set: drop --pred, --chia and --update-baseline")
    if variants and not compare:
        raise ConfigError(f"unexpected argument {variants[0]!r}: variants are given after --compare")


def _recording_path(replay: Path | None, baseline: Path, key: str, report: dict[str, Any], subset: str | None) -> Path:
    """The recording to refresh: the one replayed, else the baseline's, else the conventional name."""
    from pipeline.evaluate.cassette import recording_name
    from pipeline.evaluate.gate import find_section, load_baseline

    if replay is not None:
        return replay
    try:
        recorded = find_section(load_baseline(baseline), key)[1].get("recording")
    except TrialstructError:
        recorded = None
    return Path(recorded) if recorded else recording_name(report.get("run") or {"backend": report["backend"]}, subset)


def _echo_gate(outcome: dict[str, Any]) -> None:
    if outcome["verdict"] == "passed":
        typer.echo(outcome["summary"])
        return
    for line in outcome["lines"]:
        typer.echo(line, err=True)
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
