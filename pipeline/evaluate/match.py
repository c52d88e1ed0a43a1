"""Span matching and precision/recall counts, shared by the scorer and the rules cross-validation.

Items are anything with `.start`, `.end` and `.type` (schema Entities, Chia entities, criteria
with `.kind` wrapped by the caller). Types are compared as strings, so `EntityType.DRUG == "Drug"`.

- strict: same type and the same fragments. An item's fragments are its `.fragments` attribute
  when present and non-empty (Chia's discontinuous spans), else the single span `(start, end)`.
  A discontinuous gold entity therefore only matches a prediction with exactly the same pieces.
- relaxed: same type and overlapping `[start, end)` hulls, one-to-one. The matching has maximum
  cardinality; among such matchings the greedy start prefers larger overlaps, ties broken by
  closer boundaries, then by index, so the result is deterministic.

Counts conventions: precision is 0.0 when nothing was predicted, recall 0.0 when there is no gold,
except when both sides are empty (tp = fp = fn = 0): then precision, recall and f1 are all 1.0,
because predicting nothing where there is nothing is perfect agreement (and "gold vs itself is
1.0 everywhere" holds for metrics with no items).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def empty(self) -> bool:
        return self.tp + self.fp + self.fn == 0

    @property
    def precision(self) -> float:
        if self.empty:
            return 1.0
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        if self.empty:
            return 1.0
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        if self.empty:
            return 1.0
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn)

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    def as_dict(self) -> dict[str, float | int]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


def _fragments(item: Any) -> tuple[tuple[int, int], ...]:
    pieces = getattr(item, "fragments", None)
    if pieces:
        return tuple((int(s), int(e)) for s, e in pieces)
    return ((item.start, item.end),)


def _strict_pairs(gold: Sequence[Any], pred: Sequence[Any]) -> list[tuple[int, int]]:
    waiting: dict[tuple, list[int]] = defaultdict(list)
    for j in reversed(range(len(pred))):
        waiting[(str(pred[j].type), _fragments(pred[j]))].append(j)
    pairs = []
    for i, item in enumerate(gold):
        stack = waiting.get((str(item.type), _fragments(item)))
        if stack:
            pairs.append((i, stack.pop()))
    return pairs


def _overlap(a: Any, b: Any) -> int:
    return min(a.end, b.end) - max(a.start, b.start)


def _candidate_edges(gold: Sequence[Any], pred: Sequence[Any], gi: list[int], pj: list[int]) -> list[tuple]:
    """Overlapping (gold, pred) pairs of one type, found by bisecting preds sorted by start."""
    order = sorted(pj, key=lambda j: pred[j].start)
    starts = [pred[j].start for j in order]
    longest = max(pred[j].end - pred[j].start for j in order)
    edges = []
    for i in gi:
        g = gold[i]
        lo = bisect_left(starts, g.start - longest)
        hi = bisect_left(starts, max(g.end, g.start + 1))
        for j in order[lo:hi]:
            p = pred[j]
            size = _overlap(g, p)
            if size > 0 or (p.start, p.end) == (g.start, g.end):
                edges.append((-size, abs(g.start - p.start) + abs(g.end - p.end), i, j))
    return edges


def _max_matching(edges: list[tuple]) -> dict[int, int]:
    """Greedy by preference, then augmenting paths (Kuhn) until the matching is maximum."""
    edges.sort()
    options: dict[int, list[int]] = defaultdict(list)
    gold_of: dict[int, int] = {}
    pred_of: dict[int, int] = {}
    for _, _, i, j in edges:
        options[i].append(j)
        if i not in pred_of and j not in gold_of:
            pred_of[i], gold_of[j] = j, i

    def augment(i: int, seen: set[int]) -> bool:
        for j in options[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in gold_of or augment(gold_of[j], seen):
                pred_of[i], gold_of[j] = j, i
                return True
        return False

    for i in list(options):
        if i not in pred_of:
            augment(i, set())
    return pred_of


def _relaxed_pairs(gold: Sequence[Any], pred: Sequence[Any]) -> list[tuple[int, int]]:
    by_type: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for i, item in enumerate(gold):
        by_type[str(item.type)][0].append(i)
    for j, item in enumerate(pred):
        by_type[str(item.type)][1].append(j)
    pairs: list[tuple[int, int]] = []
    for gi, pj in by_type.values():
        if gi and pj:
            pairs.extend(_max_matching(_candidate_edges(gold, pred, gi, pj)).items())
    return sorted(pairs)


def match_spans(gold: Sequence[Any], pred: Sequence[Any], *, relaxed: bool) -> list[tuple[int, int]]:
    """One-to-one (gold_index, pred_index) pairs, sorted by gold index."""
    return _relaxed_pairs(gold, pred) if relaxed else sorted(_strict_pairs(gold, pred))


def count(gold: Sequence[Any], pred: Sequence[Any], *, relaxed: bool) -> Counts:
    tp = len(match_spans(gold, pred, relaxed=relaxed))
    return Counts(tp=tp, fp=len(pred) - tp, fn=len(gold) - tp)
