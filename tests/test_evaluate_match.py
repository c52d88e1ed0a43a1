"""Span matching and Counts on hand-computed cases."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from pipeline.evaluate.match import Counts, count, match_spans


def span(start: int, end: int, type_: str = "Drug", fragments=None) -> SimpleNamespace:
    return SimpleNamespace(start=start, end=end, type=type_, fragments=fragments)


def test_counts_scores_and_sum():
    c = Counts(tp=3, fp=1, fn=2) + Counts(tp=1, fp=0, fn=0)
    assert (c.tp, c.fp, c.fn) == (4, 1, 2)
    assert c.precision == pytest.approx(4 / 5)
    assert c.recall == pytest.approx(4 / 6)
    assert c.f1 == pytest.approx(2 * 4 / (2 * 4 + 1 + 2))
    assert c.as_dict() == {"precision": c.precision, "recall": c.recall, "f1": c.f1, "tp": 4, "fp": 1, "fn": 2}


def test_counts_undefined_cases():
    assert Counts().as_dict() == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "tp": 0, "fp": 0, "fn": 0}
    only_fn = Counts(fn=2)
    assert (only_fn.precision, only_fn.recall, only_fn.f1) == (0.0, 0.0, 0.0)
    only_fp = Counts(fp=2)
    assert (only_fp.precision, only_fp.recall, only_fp.f1) == (0.0, 0.0, 0.0)


def test_strict_needs_type_and_exact_offsets():
    gold = [span(0, 5), span(10, 15, "Condition"), span(20, 25)]
    pred = [span(0, 5), span(10, 15, "Drug"), span(20, 26)]
    assert match_spans(gold, pred, relaxed=False) == [(0, 0)]
    assert count(gold, pred, relaxed=False) == Counts(tp=1, fp=2, fn=2)


def test_strict_duplicates_match_one_to_one():
    gold = [span(0, 5), span(0, 5)]
    pred = [span(0, 5), span(0, 5), span(0, 5)]
    assert match_spans(gold, pred, relaxed=False) == [(0, 0), (1, 1)]


def test_strict_compares_fragments_of_discontinuous_spans():
    gold = [span(0, 20, fragments=[(0, 5), (15, 20)])]
    assert count(gold, [span(0, 20)], relaxed=False).tp == 0
    assert count(gold, [span(0, 20, fragments=[(0, 5), (15, 20)])], relaxed=False).tp == 1
    assert count(gold, [span(3, 18)], relaxed=True).tp == 1


def test_relaxed_overlap_same_type_only():
    gold = [span(0, 10), span(20, 30, "Condition")]
    pred = [span(5, 12), span(25, 35, "Procedure"), span(10, 20)]
    assert match_spans(gold, pred, relaxed=True) == [(0, 0)]


def test_touching_spans_do_not_overlap():
    assert count([span(0, 5)], [span(5, 9)], relaxed=True) == Counts(tp=0, fp=1, fn=1)


def test_relaxed_prefers_larger_overlap():
    gold = [span(0, 10)]
    pred = [span(8, 20), span(2, 10)]
    assert match_spans(gold, pred, relaxed=True) == [(0, 1)]


def test_relaxed_maximises_matches_over_greedy_choice():
    # Greedy by overlap would give gold 0 the long pred 0 and leave gold 1 unmatched.
    gold = [span(0, 10), span(9, 12)]
    pred = [span(0, 12), span(0, 3)]
    assert match_spans(gold, pred, relaxed=True) == [(0, 1), (1, 0)]


def test_relaxed_is_one_to_one():
    gold = [span(0, 10)]
    pred = [span(0, 4), span(5, 10)]
    assert count(gold, pred, relaxed=True) == Counts(tp=1, fp=1, fn=0)


def _brute_force_max(gold, pred) -> int:
    """Maximum matching size by exhaustive search (tiny inputs only)."""
    def best(i: int, used: frozenset) -> int:
        if i == len(gold):
            return 0
        options = [best(i + 1, used)]
        for j, p in enumerate(pred):
            g = gold[i]
            if j not in used and g.type == p.type and min(g.end, p.end) > max(g.start, p.start):
                options.append(1 + best(i + 1, used | {j}))
        return max(options)
    return best(0, frozenset())


def test_relaxed_matching_is_maximum_on_random_cases():
    rng = random.Random(7)
    for _ in range(300):
        def draw(n: int) -> list:
            out = []
            for _ in range(n):
                start = rng.randrange(0, 30)
                out.append(span(start, start + rng.randrange(1, 8), rng.choice("AB")))
            return out
        gold, pred = draw(rng.randrange(0, 6)), draw(rng.randrange(0, 6))
        pairs = match_spans(gold, pred, relaxed=True)
        assert len({i for i, _ in pairs}) == len({j for _, j in pairs}) == len(pairs)
        assert len(pairs) == _brute_force_max(gold, pred)
