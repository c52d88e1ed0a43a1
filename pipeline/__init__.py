"""trialstruct: clinical-trial eligibility criteria to validated, source-grounded JSON.

Stages, in the order data flows: ingest -> segment -> extract -> ground -> cache -> run ->
evaluate / review. The library API is small:

    from pipeline import structure, run_batch, RunConfig, TrialRecord
    record = structure("Inclusion Criteria:\\n- Hemoglobin < 80 g/L")
    result = run_batch(["trials.jsonl"], "out", RunConfig(backend="rules"))

Names are imported on first use, so `import pipeline` stays cheap for the command line.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "structure": "pipeline.api",
    "run_batch": "pipeline.api",
    "RunConfig": "pipeline.config",
    "RunResult": "pipeline.run.outputs",
    "TrialRecord": "pipeline.schema",
    "TrialstructError": "pipeline.errors",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
