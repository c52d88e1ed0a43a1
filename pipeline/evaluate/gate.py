"""Regression gate: compare a report's F1 scores against the accepted baseline.

`evals/baseline.json` is keyed by backend so one file serves every gate:

    {"rules": {"documents": 30, "metrics": {"entities.relaxed": {"value": 0.76, "tolerance": 0.02}, ...}},
     "local": {...}}

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


def baseline_section(report: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The baseline entries for one report, keeping any per-metric tolerance overrides."""
    old_metrics = (previous or {}).get("metrics", {})
    metrics = {}
    for name, scores in report["metrics"].items():
        entry: dict[str, Any] = {
            "value": round(scores["f1"], 6),
            "tolerance": derived_tolerance(report["intervals"].get(name, {}).get("f1")),
        }
        if "tolerance_override" in old_metrics.get(name, {}):
            entry["tolerance_override"] = old_metrics[name]["tolerance_override"]
        metrics[name] = entry
    return {"documents": report["documents_scored"], "metrics": metrics}


def update_baseline(path: Path, key: str, report: dict[str, Any]) -> None:
    """Rewrite only the `key` section of the baseline file, atomically."""
    data = load_baseline(path)
    data[key] = baseline_section(report, data.get(key))
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def check(baseline: dict[str, Any], key: str, report: dict[str, Any], where: str = "baseline") -> list[str]:
    """One message per tracked metric that fell by more than its tolerance (empty list: pass)."""
    if key not in baseline:
        raise EvaluateError(f"{where}: no section {key!r}; create it with --update-baseline")
    failures = []
    for name, entry in sorted(baseline[key]["metrics"].items()):
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
