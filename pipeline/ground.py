"""Grounding: find where a model's words sit in the source, so offsets never come from the model.

A model answers with text only; this module turns that text into absolute offsets inside one
criterion's span, trying the strictest match first:

1. the exact string;
2. the same tokens ignoring case and whitespace (line breaks inside a phrase are common in
   registry text), still reported as alignment "exact" because no character was changed;
3. either of those glued to a neighbouring word by scraping ("moreimmunosuppressants"), only when
   the glued neighbour is a short function word, so a real word is never cut ("year" in "years");
4. a fuzzy match (difflib ratio at or above a threshold) over word-bounded windows, reported as
   "fuzzy".

Repeated words are placed in reading order: each entity of a criterion takes the first occurrence,
at or after the entity before it, that overlaps no earlier entity ("women ..., women of
reproductive age" gives two); an answer out of order falls back to the first occurrence not taken.

Values and time windows: the model's text is placed near its entity, then normalised by the rules
parsers (`pipeline.extract.rules`). A normalised form the model gives wins when its numbers are
written in the text; one whose numbers are not is flagged and the parsed form is used instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any, Protocol

from pipeline.extract.rules.temporal import find_temporals
from pipeline.extract.rules.values import NUMBER_WORDS, find_values
from pipeline.schema import Alignment, Comparator, Direction, Temporal, Value

FUZZY_THRESHOLD = 0.85
_WORD = re.compile(r"\w[\w'’-]*|[^\w\s]")
_NUMBER = re.compile(r"(?<![\w.])(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?)")
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "x": 10}
_UNICODE_ROMAN = {chr(0x2160 + n): n + 1 for n in range(12)}
_WORDS = re.compile(r"[^\W\d_]+")
# words that scraped pages glue to the next or previous one ("withhepatitis", "infectionwithin")
GLUE_WORDS = frozenset({
    "and", "or", "of", "the", "with", "without", "within", "for", "from", "more", "than", "previous", "prior",
    "other", "any", "no", "not", "including", "history",
})
# a long glued neighbour with one of these endings is a word of its own ("sustainedincreased"), while
# the pieces that make real words ('s', 'ic', 'radio', 'hyper', 'immuno') are short or end otherwise
WORD_ENDINGS = ("ed", "ant", "ent", "ous", "ion", "ive", "al")
DAYS_PER_UNIT = (1 / 24, 1, 7, 30, 365)  # hours, days, weeks, months, years
DAYS_TOLERANCE = 0.02  # '12 months' is 360 or 365 days


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
    anchor = start if near is None else near
    found = occurrences(source, start, end, needle, threshold=threshold)
    if not found:
        return None
    if found[0].alignment == "fuzzy":
        return found[0]
    return min(found, key=lambda m: (abs(m.start - anchor), m.start))


def occurrences(
    source: str, start: int, end: int, needle: str, *, threshold: float | None = FUZZY_THRESHOLD
) -> list[Match]:
    """Every placement of `needle` of the best kind found, in reading order (one, if fuzzy)."""
    needle = needle.strip()
    if not needle or start >= end:
        return []
    for finder in (_exact, _normalised):
        spans = sorted({span for span in finder(source, start, end, needle) if _whole_or_glued(source, *span)})
        if spans:
            return [Match(s, e, source[s:e], "exact", 1.0) for s, e in spans]
    fuzzy = None if threshold is None else _fuzzy(source, start, end, needle, threshold, start)
    return [fuzzy] if fuzzy else []


def _cuts(source: str, at: int) -> bool:
    return 0 < at < len(source) and source[at - 1].isalnum() and source[at].isalnum()


def _on_word_edges(source: str, start: int, end: int) -> bool:
    """A span must not cut a word in two ('year' is not grounded inside 'years')."""
    return not (_cuts(source, start) or _cuts(source, end))


def _whole_or_glued(source: str, start: int, end: int) -> bool:
    """Whole words, or words glued by scraping: each cut edge must separate two words of their own."""
    return not any(_cuts(source, at) and not _glued_at(source, at) for at in (start, end))


def _glued_at(source: str, at: int) -> bool:
    """Whether the letters either side of `at` are two words run together: one side a glue word or a
    long word with a word ending, the other a word of at least two letters."""
    left, right = _letters(source, at, -1), _letters(source, at, +1)
    return min(len(left), len(right)) >= 2 and (_word_of_its_own(left) or _word_of_its_own(right)) and (
        len(left) >= 4 or left in GLUE_WORDS) and (len(right) >= 4 or right in GLUE_WORDS)


def _letters(source: str, at: int, step: int) -> str:
    """The letters running from `at` to the left (-1) or right (+1), lower-cased."""
    i = at
    if step < 0:
        while i > 0 and source[i - 1].isalpha():
            i -= 1
        return source[i:at].lower()
    while i < len(source) and source[i].isalpha():
        i += 1
    return source[at:i].lower()


def _word_of_its_own(piece: str) -> bool:
    return piece in GLUE_WORDS or (len(piece) >= 6 and piece.endswith(WORD_ENDINGS))


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


# ---------------------------------------------------------------- numbers


def numbers_in(text: str) -> set[float]:
    """Every number written in `text` as a numeral ('1,000' is one thousand, '1,5' is one and a half)."""
    found: set[float] = set()
    for token in _NUMBER.findall(text):
        if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", token):
            found.add(float(token.replace(",", "")))
        else:
            found.add(float(token.replace(",", ".")))
    return found


def numbers_written(text: str) -> set[float]:
    """Numbers in any written form: numerals, number words, Roman numerals ('Stage III', 'Ⅲ'), '++' grades."""
    found = numbers_in(text)
    for word in _WORDS.findall(text):
        lowered = word.lower()
        if lowered in NUMBER_WORDS:
            found.add(float(NUMBER_WORDS[lowered]))
        elif word.isupper() and lowered in _ROMAN:
            found.add(float(_ROMAN[lowered]))
    found.update(float(n) for ch, n in _UNICODE_ROMAN.items() if ch in text)
    found.update(float(len(run)) for run in re.findall(r"\++", text))
    return found


def number_occurs(number: float, text: str) -> bool:
    """Whether `number` is written in `text` as a numeral."""
    return _among(number, numbers_in(text))


def _among(number: float, seen: set[float]) -> bool:
    return any(abs(number - s) <= 1e-9 * max(1.0, abs(s)) for s in seen)


# ---------------------------------------------------------------- normalised forms
# a value as '>= 18 - years' (comparator low high unit), a time window as 'before now 0 1095'
# (direction anchor min_days max_days); '-' for none

_NONE = "-"


def _number(raw: str) -> float | None:
    return None if raw == _NONE else float(raw)


def _show(number: float | None) -> str:
    return _NONE if number is None else f"{number:g}"


def format_value(value: Value) -> str | None:
    """'>= 18 - years'; None for a qualitative value (no comparator, bounds or unit)."""
    if (value.comparator, value.low, value.high, value.unit) == (None, None, None, None):
        return None
    return " ".join([value.comparator or _NONE, _show(value.low), _show(value.high), value.unit or _NONE])


def format_temporal(temporal: Temporal) -> str | None:
    """'before now 0 1095'; None when nothing is normalised."""
    parts = (temporal.direction, temporal.anchor, temporal.min_days, temporal.max_days)
    if parts == (None, None, None, None):
        return None
    return " ".join([temporal.direction or _NONE, temporal.anchor or _NONE, _show(temporal.min_days),
                     _show(temporal.max_days)])


COMPARATORS: tuple[Comparator, ...] = ("<", "<=", ">", ">=", "=", "between")
DIRECTIONS: tuple[Direction, ...] = ("before", "after", "during")


def parse_value_norm(text: str) -> dict[str, Any]:
    """'>= 18 - years' -> comparator, low, high, unit; ValueError when malformed."""
    parts = text.split(maxsplit=3)
    if len(parts) < 3 or parts[0] not in (*COMPARATORS, _NONE):
        raise ValueError(f"value form {text!r} is not 'comparator low high unit'")
    unit = parts[3].strip() if len(parts) == 4 and parts[3].strip() != _NONE else None
    return {"comparator": None if parts[0] == _NONE else parts[0], "low": _number(parts[1]),
            "high": _number(parts[2]), "unit": unit}


def parse_time_norm(text: str) -> dict[str, Any]:
    """'before now 0 1095' -> direction, anchor, min_days, max_days; ValueError when malformed."""
    parts = text.split()
    if len(parts) != 4 or parts[0] not in (*DIRECTIONS, _NONE):
        raise ValueError(f"time form {text!r} is not 'direction anchor min_days max_days'")
    return {"direction": None if parts[0] == _NONE else parts[0], "anchor": None if parts[1] == _NONE else parts[1],
            "min_days": _number(parts[2]), "max_days": _number(parts[3])}


# ---------------------------------------------------------------- entities of a model answer


class ModelEntity(Protocol):
    """What grounding reads of a model's entity (pipeline.extract.llm.answer.EntityOut)."""

    text: str
    type: Any
    negated: bool
    value: str | None
    value_norm: str | None
    time: str | None
    time_norm: str | None


@dataclass(frozen=True)
class CriterionItem:
    """The part of a criterion sent to the model: its own text, without its sub-items."""

    id: str
    start: int
    end: int
    text: str


@dataclass
class Grounded:
    """One entity's record fields (with its 'criterion'), or the error a re-ask sends back."""

    fields: dict[str, Any] | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Grounder:
    """Grounds the entities of one batch; remembers the spans taken so repeats go to the next occurrence."""

    source: str
    items: dict[str, CriterionItem]
    taken: dict[str, set[tuple[int, int]]] = field(default_factory=dict)
    cursor: dict[str, int] = field(default_factory=dict)

    def entity(self, criterion: str, out: ModelEntity) -> Grounded:
        name = f"entity {out.text!r} (criterion {criterion})"
        item = self.items.get(criterion)
        if item is None:
            return Grounded(error=f"{name}: unknown criterion id; use one of {', '.join(self.items)}")
        found = occurrences(self.source, item.start, item.end, out.text)
        if not found or found[0].alignment == "fuzzy":
            elsewhere = self._exactly_elsewhere(out.text, item)
            if elsewhere is not None:
                item, found = elsewhere
        if not found:
            return Grounded(error=f"{name}: text not found in the criterion")
        match = self._next_unused(item.id, found)
        result = Grounded(fields={
            "criterion": item.id, "type": out.type, "text": match.text, "start": match.start, "end": match.end,
            "negated": out.negated, "alignment": match.alignment,
        })
        for kind in ATTRIBUTES:
            error = self._attach(item, match, out, result, kind)
            if error is not None:
                return Grounded(error=f"{name}: {error}")
        return result

    def _next_unused(self, criterion: str, found: list[Match]) -> Match:
        """The first occurrence at or after the previous entity that overlaps no entity placed before
        (entities never overlap, GUIDELINE.md section 4), else the first free one, else the first."""
        taken = self.taken.setdefault(criterion, set())
        apart = [m for m in found if not any(s < m.end and m.start < e for s, e in taken)]
        free = [m for m in found if (m.start, m.end) not in taken]
        after = [m for m in apart if m.start >= self.cursor.get(criterion, 0)]
        match = (after or apart or free or found)[0]
        taken.add((match.start, match.end))
        self.cursor[criterion] = match.start
        return match

    def _exactly_elsewhere(self, text: str, item: CriterionItem) -> tuple[CriterionItem, list[Match]] | None:
        """Text found verbatim in another criterion of the batch moves the entity there (a wrong id is
        the model's slip; the words are real)."""
        for other in self.items.values():
            if other is not item:
                found = occurrences(self.source, other.start, other.end, text, threshold=None)
                if found:
                    return other, found
        return None

    def _attach(
        self, item: CriterionItem, match: Match, out: ModelEntity, result: Grounded, kind: Attribute
    ) -> str | None:
        """Place the entity's value or time text near it and normalise it; the error if it cannot be placed."""
        text = getattr(out, kind.text)
        if not text:
            return None
        span = locate(self.source, item.start, item.end, text, near=match.start)
        if span is None:
            return f"{kind.what} text {text!r} not found in the criterion"
        chosen = self._cross_check(getattr(out, kind.norm), span.text, kind, result)
        result.fields[kind.field] = kind.model(text=span.text, start=span.start, end=span.end, **chosen)  # type: ignore[index]
        return None

    def _cross_check(self, norm: str | None, text: str, kind: Attribute, result: Grounded) -> dict[str, Any]:
        """The model's normalised form if its numbers are written in `text`, else the parsed one (flagged)."""
        parsed = kind.parse_text(text)
        if not norm:
            return parsed
        where = f"{kind.what} of {result.fields['text']!r}"  # type: ignore[index]
        try:
            given = kind.parse_norm(norm)
        except ValueError as exc:
            result.warnings.append(f"{where}: {exc}; used the parsed form")
            return parsed
        unwritten = [n for n in kind.numbers(given) if not kind.written(n, text)]
        if not unwritten:
            return given
        keep = parsed if any(v is not None for v in parsed.values()) else given
        kept = "the parsed form" if keep is parsed else "it anyway"
        result.warnings.append(f"{where} in {text!r}: number {unwritten[0]:g} is not in the text; kept {kept}")
        return keep


def _value_written(number: float, text: str) -> bool:
    return _among(number, numbers_written(text))


def _days_written(days: float, text: str) -> bool:
    """A day count must be a written number of hours, days, weeks, months or years."""
    spans = [n * per for n in numbers_written(text) for per in DAYS_PER_UNIT]
    return days == 0 or any(abs(days - d) <= DAYS_TOLERANCE * d for d in spans)


def _parsed_value(text: str) -> dict[str, Any]:
    found = max(find_values(text), key=lambda v: v.end - v.start, default=None)
    if found is None:
        return {"comparator": None, "low": None, "high": None, "unit": None}
    return {"comparator": found.comparator, "low": found.low, "high": found.high, "unit": found.unit}


def _parsed_temporal(text: str) -> dict[str, Any]:
    found = max(find_temporals(text), key=lambda t: t.end - t.start, default=None)
    if found is None:
        return {"direction": None, "anchor": None, "min_days": None, "max_days": None}
    return {"direction": found.direction, "anchor": found.anchor, "min_days": found.min_days,
            "max_days": found.max_days}


@dataclass(frozen=True)
class Attribute:
    """How one kind of entity attribute is read from a model entity, parsed, cross-checked and stored."""

    field: str  # the Entity field it fills
    what: str  # its name in messages
    text: str  # the ModelEntity attribute holding its words
    norm: str  # the ModelEntity attribute holding its normalised form
    model: type[Value] | type[Temporal]
    parse_text: Callable[[str], dict[str, Any]]
    parse_norm: Callable[[str], dict[str, Any]]
    bounds: tuple[str, str]  # the numbers to cross-check
    written: Callable[[float, str], bool]

    def numbers(self, form: dict[str, Any]) -> list[float]:
        return [form[name] for name in self.bounds if form[name] is not None]


ATTRIBUTES = (
    Attribute("value", "value", "value", "value_norm", Value, _parsed_value, parse_value_norm, ("low", "high"),
              _value_written),
    Attribute("temporal", "time", "time", "time_norm", Temporal, _parsed_temporal, parse_time_norm,
              ("min_days", "max_days"), _days_written),
)
