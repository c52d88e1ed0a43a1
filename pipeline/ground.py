"""Grounding: find where a model's words sit in the source, so offsets never come from the model.

A model answers with entity text only; this module turns that text into absolute offsets inside
one criterion's span, trying the strictest match first:

1. the exact string;
2. the same tokens ignoring case and whitespace (line breaks inside a phrase are common in
   registry text), still reported as alignment "exact" because no character was changed;
3. a fuzzy match (difflib ratio at or above a threshold) over word-bounded windows, reported as
   "fuzzy".

The span returned is always a real slice of the source, so `source[start:end] == text` holds.
Numbers a model puts in a value must also occur in the criterion (`numbers_in`), which catches
invented thresholds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

from pipeline.schema import Alignment

FUZZY_THRESHOLD = 0.85
_WORD = re.compile(r"\w[\w'’-]*|[^\w\s]")
_NUMBER = re.compile(r"(?<![\w.])(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?)")


@dataclass(frozen=True)
class Match:
    """Absolute offsets of grounded text and how it was found."""

    start: int
    end: int
    text: str
    alignment: Alignment
    score: float


def locate(
    source: str,
    start: int,
    end: int,
    needle: str,
    *,
    near: int | None = None,
    threshold: float | None = FUZZY_THRESHOLD,
) -> Match | None:
    """Ground `needle` inside `source[start:end]`; the occurrence nearest `near` wins. None if absent.

    `threshold=None` turns the fuzzy step off.
    """
    needle = needle.strip()
    if not needle or start >= end:
        return None
    anchor = start if near is None else near
    for finder in (_exact, _normalised):
        spans = [span for span in finder(source, start, end, needle) if _on_word_edges(source, *span)]
        if spans:
            s, e = min(spans, key=lambda span: (abs(span[0] - anchor), span[0]))
            return Match(s, e, source[s:e], "exact", 1.0)
    return None if threshold is None else _fuzzy(source, start, end, needle, threshold, anchor)


def _on_word_edges(source: str, start: int, end: int) -> bool:
    """A span must not cut a word in two ('year' is not grounded inside 'years')."""
    cut_left = start > 0 and source[start - 1].isalnum() and source[start].isalnum()
    cut_right = end < len(source) and source[end - 1].isalnum() and source[end].isalnum()
    return not (cut_left or cut_right)


def _exact(source: str, start: int, end: int, needle: str) -> list[tuple[int, int]]:
    spans, at = [], source.find(needle, start, end)
    while at != -1 and at + len(needle) <= end:
        spans.append((at, at + len(needle)))
        at = source.find(needle, at + 1, end)
    return spans


def _normalised(source: str, start: int, end: int, needle: str) -> list[tuple[int, int]]:
    """Matches at every start, overlapping ones too: in '9B B  B' the 'B B B' that cuts '9B' is
    rejected later, and the one after it must still be found."""
    pattern = r"\s+".join(re.escape(token) for token in needle.split())
    regex = re.compile(pattern, re.IGNORECASE)
    spans, at = [], start
    while (match := regex.search(source, at, end)) is not None:
        spans.append(match.span())
        at = match.start() + 1
    return spans


def _fuzzy(source: str, start: int, end: int, needle: str, threshold: float, anchor: int) -> Match | None:
    """Best word-bounded window whose similarity to `needle` reaches `threshold`."""
    words = [(m.start() + start, m.end() + start) for m in _WORD.finditer(source[start:end])]
    target = " ".join(needle.lower().split())
    low, high = 0.6 * len(target), 1.4 * len(target) + 2
    best: tuple[float, int, int, int] | None = None
    for i, (ws, _) in enumerate(words):
        for _, we in words[i:]:
            if we - ws > high:
                break
            if we - ws < low:
                continue
            candidate = " ".join(source[ws:we].lower().split())
            score = SequenceMatcher(None, target, candidate, autojunk=False).ratio()
            rank = (score, -abs(ws - anchor), ws, we)
            if best is None or rank > best:
                best = rank
    if best is None or best[0] < threshold:
        return None
    score, _, ws, we = best
    return Match(ws, we, source[ws:we], "fuzzy", round(score, 3))


def numbers_in(text: str) -> set[float]:
    """Every number written in `text` ('1,000' is one thousand, '1,5' is one and a half)."""
    found: set[float] = set()
    for token in _NUMBER.findall(text):
        if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", token):
            found.add(float(token.replace(",", "")))
        else:
            found.add(float(token.replace(",", ".")))
    return found


def number_occurs(number: float, text: str) -> bool:
    """Whether `number` is written in `text` as a numeral."""
    return any(abs(number - seen) <= 1e-9 * max(1.0, abs(seen)) for seen in numbers_in(text))
