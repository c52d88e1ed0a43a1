"""Evaluation: scoring predictions against gold and Chia, and the regression gate.

Module map: `match` (span matching, Counts), `metrics` (per-document counts and the exact rules),
`stats` (micro/macro/bootstrap), `score` (pairing documents, the JSON report), `records` (loading),
`predict` (running a backend on gold texts), `chia` (BRAT reader), `chia_eval` (the Chia adapter),
`report` (table/JSON/markdown), `gate` (baseline regression check), `compare` and `compare_report`
(variants side by side, `eval --compare`), `cassette` (`--record` / `--replay`), `commands` (the
`trialstruct eval` CLI). Prices live in the leaf module `pipeline.pricing`.
Kept import-free so `trialstruct --help` and `from pipeline.evaluate.match import ...` stay light.
"""

from typing import Any

_LAZY = {"score_records", "build_report"}


def __getattr__(name: str) -> Any:
    """`from pipeline.evaluate import score_records` keeps working without importing it eagerly."""
    if name in _LAZY:
        from pipeline.evaluate import score

        return getattr(score, name)
    raise AttributeError(f"module 'pipeline.evaluate' has no attribute {name!r}")
