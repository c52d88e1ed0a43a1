"""Regression gate: compare a report's F1 scores against the accepted baseline.

`evals/baseline.json` has one section per backend + model + prompt (`baseline_key`), so one file
serves every gate:

    {"rules": {"documents": 30, "metrics": {"entities.relaxed": {"value": 0.76, "tolerance": 0.02}, ...}},
     "openai/gpt-4o-mini/extract-v1": {"run": {"backend": ..., "model": ..., "prompt": {...}}, ...},
     "seeds:local/SmolLM2-135M-Instruct.Q4_1/extract-v1": {"aliases": ["local:seeds"], ...}}

A key is `[set:]backend[/model/prompt]`: model and prompt only for backends that use a prompt,
`set` for a subset of the gold documents (`--baseline-set`) or `chia`. `aliases` keeps an older
key working. A section records the `run` identity it was measured with (and the `recording` it was
replayed from), which is how a stale recording is told apart from a regression.

Metrics are gated in two groups. `extraction` (entities, values, temporal, negation) is what a
backend, model or prompt changes. `pipeline` (criteria.segmentation, metadata.*) comes from the
deterministic ingest and segmenter, the same for every backend: it is tracked only in sections of
prompt-free backends (rules), so a prompt change is never reported as a segmentation or metadata
regression.

Every metric of the report is tracked by its F1. The tolerance is the half-width of the bootstrap
95% interval of that F1, clamped to [TOLERANCE_FLOOR, TOLERANCE_CAP]: the floor absorbs float noise
on metrics with a zero-width interval, the cap keeps small, noisy metrics gated at all. A metric
entry may carry `"tolerance_override": 0.03`, which wins over the derived tolerance and survives
`--update-baseline`. A check fails when F1 < value - tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.errors import EvaluateError
from pipeline.evaluate.metrics import ATTRIBUTE_METRICS
from pipeline.files import atomic_write

TOLERANCE_FLOOR = 0.005
TOLERANCE_CAP = 0.05


def derived_tolerance(interval: list[float] | None) -> float:
    half_width = (interval[1] - interval[0]) / 2 if interval else 0.0
    return round(min(max(half_width, TOLERANCE_FLOOR), TOLERANCE_CAP), 6)


def load_baseline(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise EvaluateError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise EvaluateError(f"{path}: expected an object keyed by backend name")
    return data


def metric_group(name: str) -> str:
    """`extraction` for what a backend, model or prompt decides; `pipeline` for segmentation and metadata."""
    return "extraction" if name.startswith("entities.") or name in ATTRIBUTE_METRICS else "pipeline"


def identity_key(identity: dict[str, Any]) -> str:
    """`backend`, or `backend/model/prompt` for a backend that uses a prompt."""
    prompt = identity.get("prompt")
    if not prompt:
        return str(identity["backend"])
    return "/".join(str(part) for part in (identity["backend"], identity.get("model"), prompt["name"]))


def baseline_key(identity: dict[str, Any], subset: str | None = None) -> str:
    key = identity_key(identity)
    return f"{subset}:{key}" if subset else key


def find_section(baseline: dict[str, Any], key: str, where: str = "baseline") -> tuple[str, dict[str, Any]]:
    """The section stored under `key`, or under a section that lists `key` among its aliases."""
    if key in baseline:
        return key, baseline[key]
    for name, section in baseline.items():
        if key in section.get("aliases", []):
            return name, section
    raise EvaluateError(f"{where}: no section {key!r}; create it with --update-baseline")


def tracked_metrics(report: dict[str, Any]) -> list[str]:
    """The metrics a baseline of this report gates: all of them, or the extraction group when a prompt is in play."""
    prompted = bool((report.get("run") or {}).get("prompt"))
    return [name for name in report["metrics"] if not prompted or metric_group(name) == "extraction"]


def baseline_section(
    report: dict[str, Any], previous: dict[str, Any] | None = None, recording: str | None = None
) -> dict[str, Any]:
    """The baseline entries for one report, keeping tolerance overrides, aliases and the recording."""
    previous = previous or {}
    old_metrics = previous.get("metrics", {})
    metrics = {}
    for name in tracked_metrics(report):
        entry: dict[str, Any] = {
            "value": round(report["metrics"][name]["f1"], 6),
            "tolerance": derived_tolerance(report["intervals"].get(name, {}).get("f1")),
        }
        if "tolerance_override" in old_metrics.get(name, {}):
            entry["tolerance_override"] = old_metrics[name]["tolerance_override"]
        metrics[name] = entry
    section: dict[str, Any] = {"documents": report["documents_scored"], "metrics": metrics}
    if report.get("run"):
        section["run"] = report["run"]
    for name, value in (("aliases", previous.get("aliases")), ("recording", recording or previous.get("recording"))):
        if value:
            section[name] = value
    return section


def update_baseline(path: Path, key: str, report: dict[str, Any], recording: str | None = None) -> str:
    """Rewrite only the section of `key` (or the one it is an alias of), atomically; returns its name."""
    data = load_baseline(path)
    try:
        key, previous = find_section(data, key)
    except EvaluateError:
        previous = None
    data[key] = baseline_section(report, previous, recording)
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return key


def check(baseline: dict[str, Any], key: str, report: dict[str, Any], where: str = "baseline") -> list[str]:
    """One message per tracked metric that fell by more than its tolerance (empty list: pass).

    Extraction metrics come first, then segmentation and metadata, so the lines read by cause.
    """
    _, section = find_section(baseline, key, where)
    failures = []
    ordered = sorted(section["metrics"].items(), key=lambda item: (metric_group(item[0]) != "extraction", item[0]))
    for name, entry in ordered:
        tolerance = entry.get("tolerance_override", entry["tolerance"])
        current = report["metrics"].get(name)
        if current is None:
            failures.append(f"{name} is tracked by the baseline but missing from this run")
            continue
        f1 = current["f1"]
        if f1 < entry["value"] - tolerance - 1e-9:
            failures.append(
                f"{name} f1 {f1:.3f} < baseline {entry['value']:.3f} - tol {tolerance:.3f} ({f1 - entry['value']:+.3f})"
            )
    return failures


def recorded_prompt_hash(section: dict[str, Any], recording_meta: dict[str, Any] | None) -> str | None:
    """The prompt hash the replayed answers were recorded with: the recording's own, else the baseline's."""
    for source in (recording_meta or {}, section):
        prompt = (source.get("run") or {}).get("prompt")
        if prompt:
            return prompt.get("hash")
    return None


def run_gate(
    baseline: dict[str, Any], key: str, report: dict[str, Any], where: str, replay: Path | None, rerecord: str
) -> dict[str, Any]:
    """The gate's outcome: `verdict` (passed, failed, stale, incomplete), the `lines` to show, and why.

    An offline replay that misses answers cannot be scored fairly, so it fails with one line
    naming the cause and the command that re-records, instead of one regression per metric.
    """
    from pipeline.evaluate.cassette import read_meta, stale_line

    name, section = find_section(baseline, key, where)
    outcome: dict[str, Any] = {"baseline": where, "key": name}
    misses = report.get("offline_misses") or []
    if misses:
        current = ((report.get("run") or {}).get("prompt") or {}).get("hash")
        recording = str(replay or section.get("recording") or "the recording")
        line = stale_line(misses, current, recorded_prompt_hash(section, read_meta(replay)), recording, rerecord)
        verdict = "stale" if line.startswith("prompt changed") else "incomplete"
        return {**outcome, "verdict": verdict, "lines": [line], "regressions": []}
    failures = check(baseline, name, report, where)
    if failures:
        return {**outcome, "verdict": "failed", "regressions": failures,
                "lines": [f"REGRESSION {line}" for line in failures]}
    summary = f"gate passed: no metric below baseline {where} [{name}]"
    return {**outcome, "verdict": "passed", "lines": [summary], "summary": summary, "regressions": []}
