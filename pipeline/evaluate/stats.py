"""Aggregation over documents: micro totals, macro means and bootstrap intervals.

- micro: counts summed over all documents, then P/R/F1 (the headline numbers under `metrics`).
- macro (per metric): the mean of per-document P/R/F1 over the documents where that metric has
  at least one gold or predicted item (a document with nothing to find neither helps nor hurts).
- macro over types (`entities.strict.types`, `entities.relaxed.types`): the mean of the micro
  per-type P/R/F1 over the types with at least one item.
- intervals: percentile bootstrap over documents (resample documents with replacement, fixed seed),
  for micro P, R and F1 of every metric.
- paired intervals (`paired_bootstrap`): the same resampling applied to two runs over the same
  documents at once, giving an interval for the difference of their micro F1.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter

from pipeline.evaluate.match import Counts
from pipeline.evaluate.metrics import ENTITY_TYPES

SCORES = ("precision", "recall", "f1")


@dataclass
class DocumentResult:
    doc_id: str
    counts: dict[str, Counts]
    missing: bool = False
    notes: list[str] = field(default_factory=list)


def micro(docs: Sequence[DocumentResult], names: Sequence[str]) -> dict[str, Counts]:
    totals = {name: Counts() for name in names}
    for doc in docs:
        for name in names:
            totals[name] = totals[name] + doc.counts.get(name, Counts())
    return totals


def _mean_scores(counts: Sequence[Counts]) -> dict[str, float | int]:
    n = len(counts)
    means: dict[str, float | int] = {s: (sum(getattr(c, s) for c in counts) / n if n else 1.0) for s in SCORES}
    means["n"] = n
    return means


def macro(docs: Sequence[DocumentResult], totals: dict[str, Counts]) -> dict[str, dict[str, float | int]]:
    """Per-metric means over documents, plus entity means over types (`n` = how many were averaged)."""
    result = {}
    for name in totals:
        present = [doc.counts[name] for doc in docs if name in doc.counts and not doc.counts[name].empty]
        result[name] = _mean_scores(present)
    for mode in ("strict", "relaxed"):
        per_type = [totals.get(f"entities.{mode}.{t}", Counts()) for t in ENTITY_TYPES]
        result[f"entities.{mode}.types"] = _mean_scores([c for c in per_type if not c.empty])
    return result


def _picker(indices: list[int]) -> Callable[[Sequence[int]], Sequence[int]]:
    if len(indices) == 1:
        return lambda column: (column[indices[0]],)
    return itemgetter(*indices)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile of `values` at fraction q (0..1)."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _columns(docs: Sequence[DocumentResult], names: Sequence[str]) -> dict[str, tuple[list[int], ...]]:
    """Per metric, the documents' tp, fp and fn as three columns (resampling picks rows of them)."""
    return {
        name: tuple([getattr(doc.counts.get(name, Counts()), part) for doc in docs] for part in ("tp", "fp", "fn"))
        for name in names
    }


def _resampled(columns: tuple[list[int], ...], pick: Callable[[Sequence[int]], Sequence[int]]) -> Counts:
    tp, fp, fn = columns
    return Counts(sum(pick(tp)), sum(pick(fp)), sum(pick(fn)))


def bootstrap(
    docs: Sequence[DocumentResult], names: Sequence[str], *, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, dict[str, list[float]]]:
    """{metric: {precision|recall|f1: [low, high]}}; empty when there are no documents."""
    if not docs or resamples <= 0:
        return {}
    columns = _columns(docs, names)
    samples: dict[str, dict[str, list[float]]] = {name: {s: [] for s in SCORES} for name in names}
    rng = random.Random(seed)
    population = range(len(docs))
    for _ in range(resamples):
        pick = _picker(rng.choices(population, k=len(docs)))
        for name, column in columns.items():
            counts = _resampled(column, pick)
            for s in SCORES:
                samples[name][s].append(getattr(counts, s))
    tail = (1 - level) / 2
    return {
        name: {s: [percentile(v, tail), percentile(v, 1 - tail)] for s, v in by_score.items()}
        for name, by_score in samples.items()
    }


def paired_bootstrap(
    base: Sequence[DocumentResult],
    other: Sequence[DocumentResult],
    names: Sequence[str],
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, list[float]]:
    """{metric: [low, high]} of the micro-F1 difference other - base, resampling documents in pairs.

    Both runs must score the same documents in the same order: each resample draws documents and
    scores both runs on exactly those, so the interval reflects the difference between the runs,
    not the spread between documents that an interval per run would include.
    """
    if [d.doc_id for d in base] != [d.doc_id for d in other]:
        raise ValueError("paired bootstrap needs the same documents in the same order on both sides")
    if not base or resamples <= 0:
        return {}
    base_columns, other_columns = _columns(base, names), _columns(other, names)
    samples: dict[str, list[float]] = {name: [] for name in names}
    rng = random.Random(seed)
    population = range(len(base))
    for _ in range(resamples):
        pick = _picker(rng.choices(population, k=len(base)))
        for name in names:
            samples[name].append(_resampled(other_columns[name], pick).f1 - _resampled(base_columns[name], pick).f1)
    tail = (1 - level) / 2
    return {name: [percentile(v, tail), percentile(v, 1 - tail)] for name, v in samples.items()}


def worst_documents(docs: Sequence[DocumentResult], limit: int, metric: str = "entities.relaxed") -> list[dict]:
    """The documents with the lowest F1 on `metric` (most errors first among ties)."""
    def rank(doc: DocumentResult) -> tuple:
        c = doc.counts.get(metric, Counts())
        return (c.f1, -(c.fp + c.fn), doc.doc_id)

    return [
        {"doc_id": doc.doc_id, "metric": metric, **doc.counts.get(metric, Counts()).as_dict(),
         "missing": doc.missing, "notes": doc.notes}
        for doc in sorted(docs, key=rank)[:limit]
    ]
