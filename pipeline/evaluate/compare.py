"""Scoring a backend on gold, and comparing configurations side by side (`eval --compare`).

`trialstruct eval --gold evals/gold --compare prompt=extract-v1 prompt=extract-v2` runs every
variant on the same gold documents through the same model-call cache, then compares each later
variant with the first: every metric's micro F1 on both sides, the difference, and a paired
bootstrap interval of that difference over documents (`stats.paired_bootstrap`). A variant is
one or more `key=value` settings of `RunConfig` joined by commas, or `config=FILE.toml`.

Verdict per comparison: `regression` when any extraction metric's interval lies wholly below 0,
else `improvement` when one lies wholly above 0, else `no significant change`. Segmentation and
metadata come from deterministic stages every variant shares; they are reported apart and never
decide the verdict.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import SETTINGS
from pipeline.errors import ConfigError, EvaluateError
from pipeline.evaluate.gate import metric_group
from pipeline.evaluate.metrics import metric_names
from pipeline.evaluate.stats import DocumentResult, paired_bootstrap
from pipeline.schema import TrialRecord

CHANGE_METRIC = "entities.relaxed"


def gold_records(gold: Path, docs: str | None) -> list[TrialRecord]:
    """The gold records, or those whose doc_id matches the glob `docs`."""
    from pipeline.evaluate.records import load_gold

    records = load_gold(gold)
    if docs:
        records = [r for r in records if fnmatch.fnmatchcase(r.doc_id, docs)]
        if not records:
            raise EvaluateError(f"{gold}: no gold document matches --docs {docs!r}")
    return records


def identity_of(record: TrialRecord | None) -> dict[str, Any]:
    """Backend, model and prompt of a finished run, from a record's provenance (prompt named by its version)."""
    if record is None:
        return {"backend": "none", "model": None, "prompt": None}
    p = record.provenance
    prompt = {"name": p.prompt_version, "version": p.prompt_version, "hash": p.prompt_hash} if p.prompt_hash else None
    return {"backend": p.backend, "model": p.model, "prompt": prompt}


def _report_options(options: Mapping[str, Any]) -> dict[str, Any]:
    return {name: options[name] for name in ("resamples", "seed", "worst") if name in options}


def _scored(
    records: Sequence[TrialRecord], predictions: Mapping[str, TrialRecord], info: dict[str, Any], options: Mapping
) -> tuple[dict[str, Any], list[DocumentResult]]:
    from pipeline.evaluate.score import build_report, score_records

    docs, paired = score_records(records, predictions)
    return build_report(docs, info={**info, **paired}, **_report_options(options)), docs


def score_predictions(
    records: Sequence[TrialRecord], predictions: Mapping[str, TrialRecord], info: dict[str, Any], options: Mapping
) -> dict[str, Any]:
    return _scored(records, predictions, info, options)[0]


@dataclass
class Evaluated:
    report: dict[str, Any]
    docs: list[DocumentResult]
    records: dict[str, TrialRecord]


def _evaluate(
    records: Sequence[TrialRecord], gold: Path, flags: dict[str, Any], options: Mapping[str, Any],
    record_to: Path | None = None, prices: Path | None = None,
) -> Evaluated:
    from pipeline.evaluate.predict import predict_records
    from pipeline.pricing import load_prices, run_cost

    predicted = predict_records(records, flags, gold, record_to)
    totals = {name: sum(t.get(name, 0) for t in predicted.tokens.values())
              for name in ("prompt_tokens", "completion_tokens")}
    info = {
        "gold": str(gold), "predictions": f"backend:{predicted.backend}", "backend": predicted.backend,
        "run": predicted.identity, "prediction_errors": predicted.problems,
        "offline_misses": predicted.offline_misses, "recording": predicted.recording,
    }
    if predicted.identity["prompt"] or any(totals.values()):  # a backend that calls a model
        info["cost"] = run_cost(totals, len(records), predicted.identity["model"], load_prices(prices))
        info["tokens_per_document"] = predicted.tokens
    report, docs = _scored(records, predicted.records, info, options)
    return Evaluated(report, docs, predicted.records)


def evaluate_backend(
    records: Sequence[TrialRecord], gold: Path, flags: dict[str, Any], options: Mapping[str, Any],
    record_to: Path | None = None, prices: Path | None = None,
) -> dict[str, Any]:
    """The report of the configured backend on `records`, with its run identity, tokens and cost."""
    return _evaluate(records, gold, flags, options, record_to, prices).report


# ---------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    label: str
    settings: dict[str, str]
    config_file: Path | None = None

    def flags(self, base: dict[str, Any]) -> dict[str, Any]:
        flags = {**base, **self.settings}
        if self.config_file is not None:
            flags["config_file"] = self.config_file
        return flags


def parse_variant(text: str) -> Variant:
    """`prompt=extract-v2`, `model=gpt-4o,prompt=extract-v2`, or `config=FILE.toml`."""
    settings: dict[str, str] = {}
    config_file = None
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not value:
            raise ConfigError(f"variant {text!r}: expected key=value (e.g. prompt=extract-v2 or config=FILE.toml)")
        if name == "config":
            config_file = Path(value)
            if not config_file.is_file():
                raise ConfigError(f"variant {text!r}: {value}: no such settings file")
        elif name not in SETTINGS or SETTINGS[name].affects == "secret":
            allowed = ", ".join(n for n, s in SETTINGS.items() if s.affects != "secret")
            raise ConfigError(f"variant {text!r}: unknown setting {name!r}; use config or one of {allowed}")
        else:
            settings[name] = value.strip()
    if not settings and config_file is None:
        raise ConfigError(f"variant {text!r}: expected key=value (e.g. prompt=extract-v2 or config=FILE.toml)")
    return Variant(text, settings, config_file)


def slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "variant"


# ---------------------------------------------------------------- comparing


def differences(base: Evaluated, other: Evaluated, options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per metric: both F1s, the difference and its paired bootstrap interval."""
    names = metric_names()
    intervals = paired_bootstrap(base.docs, other.docs, names, resamples=options.get("resamples", 1000),
                                 seed=options.get("seed", 0))
    rows = {}
    for name in names:
        a, b = base.report["metrics"][name], other.report["metrics"][name]
        low, high = intervals.get(name, [b["f1"] - a["f1"]] * 2)
        rows[name] = {
            "group": metric_group(name), "base": a["f1"], "other": b["f1"], "delta": b["f1"] - a["f1"],
            "interval": [low, high], "significant": "worse" if high < 0 else "better" if low > 0 else None,
            "items": a["tp"] + a["fp"] + a["fn"] + b["tp"] + b["fp"] + b["fn"],
        }
    return rows


def changed_documents(base: Evaluated, other: Evaluated, limit: int) -> list[dict[str, Any]]:
    """The documents whose entities.relaxed F1 moved most, largest change first."""
    moved = [(a.doc_id, a.counts[CHANGE_METRIC].f1, b.counts[CHANGE_METRIC].f1)
             for a, b in zip(base.docs, other.docs, strict=True)]
    moved = sorted((m for m in moved if m[1] != m[2]), key=lambda m: (-abs(m[2] - m[1]), m[0]))[:limit]
    return [{"doc_id": doc_id, "metric": CHANGE_METRIC, "base": fa, "other": fb, "delta": fb - fa}
            for doc_id, fa, fb in moved]


def _write_records(path: Path, records: Mapping[str, TrialRecord], doc_ids: Sequence[str]) -> None:
    from pipeline.files import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, "".join(records[d].model_dump_json() + "\n" for d in doc_ids if d in records))


def comparison(
    base: tuple[Variant, Evaluated], other: tuple[Variant, Evaluated], gold: Path, out: Path, options: Mapping
) -> dict[str, Any]:
    """One candidate against the base: differences, verdict, the most changed documents and how to review them."""
    (base_variant, base_run), (variant, run) = base, other
    rows = differences(base_run, run, options)
    extraction = {n: r for n, r in rows.items() if r["group"] == "extraction"}
    regressions = [n for n, r in extraction.items() if r["significant"] == "worse"]
    improvements = [n for n, r in extraction.items() if r["significant"] == "better"]
    verdict = "regression" if regressions else "improvement" if improvements else "no significant change"
    changed = changed_documents(base_run, run, options.get("worst", 5))
    ids = [c["doc_id"] for c in changed]
    left, right = out / f"{slug(base_variant.label)}.changed.jsonl", out / f"{slug(variant.label)}.changed.jsonl"
    _write_records(left, base_run.records, ids)
    _write_records(right, run.records, ids)
    review = f"trialstruct review {right} --compare {left} --gold {gold} -o {out / (slug(variant.label) + '.html')}"
    return {
        "base": base_variant.label, "other": variant.label, "verdict": verdict, "regressions": regressions,
        "improvements": improvements, "metrics": rows, "changed_documents": changed,
        "review_command": review if changed else None,
    }


def run_comparison(
    gold: Path, texts: list[str], flags: dict[str, Any], options: Mapping[str, Any], out: Path,
    json_out: Path | None, markdown: Path | None,
) -> bool:
    """Evaluate every variant, compare each later one with the first, print and write the reports.

    Returns True when any comparison's verdict is a regression.
    """
    import typer

    from pipeline.evaluate.compare_report import comparison_markdown
    from pipeline.evaluate.report import write_json
    from pipeline.files import atomic_write

    if len(texts) < 2:
        raise ConfigError("--compare needs at least two variants, e.g. --compare prompt=extract-v1 prompt=extract-v2")
    variants = [parse_variant(text) for text in texts]
    labels = [v.label for v in variants]
    if len(set(map(slug, labels))) < len(labels):
        raise ConfigError(f"--compare: variants must differ: {' '.join(labels)}")
    records = gold_records(gold, options.get("docs"))
    runs = []
    for variant in variants:
        evaluated = _evaluate(records, gold, variant.flags(flags), options, prices=options.get("prices"))
        _write_records(out / f"{slug(variant.label)}.jsonl", evaluated.records, [r.doc_id for r in records])
        runs.append((variant, evaluated))
    comparisons = [comparison(runs[0], run, gold, out, options) for run in runs[1:]]
    result: dict[str, Any] = {
        "gold": str(gold), "documents": len(records), "docs": options.get("docs"),
        "bootstrap": {"resamples": options.get("resamples", 1000), "seed": options.get("seed", 0), "level": 0.95,
                      "unit": "document", "paired": True},
        "variants": [{"label": v.label, "records": str(out / f"{slug(v.label)}.jsonl"), "run": e.report["run"],
                      "cost": e.report.get("cost"), "prediction_errors": e.report["prediction_errors"],
                      "metrics": e.report["metrics"]} for v, e in runs],
        "comparisons": comparisons,
        "verdict": _overall(comparisons),
    }
    text = comparison_markdown(result)
    typer.echo(text)
    if json_out:
        write_json(json_out, result)
    if markdown:
        atomic_write(markdown, text)
    return result["verdict"] == "regression"


def _overall(comparisons: Sequence[dict[str, Any]]) -> str:
    verdicts = {c["verdict"] for c in comparisons}
    for verdict in ("regression", "improvement"):
        if verdict in verdicts:
            return verdict
    return "no significant change"
