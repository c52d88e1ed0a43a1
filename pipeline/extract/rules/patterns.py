"""Phrases whose shape names their type whatever the lexicon says (GUIDELINE 3): language ability,
sexual behaviour and life expectancy are Observations; care settings (in/outpatient, intensive care,
emergency department, a named hospital) are Visits."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.extract.rules.lexicon import PreparedText, starts_word, word_set


@dataclass(frozen=True)
class NamedPattern:
    """A phrase shape that names one entity type whatever the lexicon says, tried only when one of its
    `words` (normalised) is in the text."""

    type: str
    words: frozenset[str]
    pattern: re.Pattern


LANGUAGES = "english french spanish finnish swedish danish german dutch italian chinese portuguese hebrew arabic"
PATTERN_ENTITIES = (  # GUIDELINE 3: life expectancy, behaviour and language are Observations, care settings Visits
    NamedPattern("Observation", word_set(f"{LANGUAGES} literate illiterate"), re.compile(
        rf"(?:non[- ]?\s?)?(?:{LANGUAGES.replace(' ', '|')})(?:[- ]speaking|[- ]speakers?| language| literacy)\b"
        rf"|speak(?:,? and understand|,? and read| and write)? (?:{LANGUAGES.replace(' ', '|')})\b|(?:il)?literate\b",
        re.IGNORECASE)),
    NamedPattern("Observation", word_set("sexually sexual sex"), re.compile(
        r"sexually active\b|sexual (?:activity|intercourse|partners?|behaviou?rs?)\b"
        r"|(?:unprotected|condomless) (?:sex|intercourse)\b", re.IGNORECASE)),
    NamedPattern("Observation", word_set("lifespan life expectancy survival"), re.compile(
        r"(?:(?:expected|anticipated|estimated|projected) )?(?:life[- ]?span|life-expectancy)\b"
        r"|(?:expected|anticipated|estimated|projected) survival\b", re.IGNORECASE)),
    NamedPattern("Visit", word_set("inpatient inpatients outpatient outpatients in out"), re.compile(
        r"(?:in-|out-?\s?)patients?(?: (?:departments?|clinics?|settings?))?\b|inpatients?\b", re.IGNORECASE)),
    NamedPattern("Visit", word_set("intensive critical icu icus nicu picu micu sicu pacu emergency"), re.compile(
        r"(?:(?:pediatric|paediatric|neonatal|newborn|cardiac|surgical|medical|cardiothoracic|neuro-?) )?"
        r"(?:intensive|critical) care(?: units?)?\b|[PNMS]?ICUs?\b|PACU\b"
        r"|emergency (?:department|room|unit|setting)s?\b", re.IGNORECASE)),
    NamedPattern("Visit", word_set("hospital"), re.compile(
        r"(?:[A-Z][\w'.]*\s)+(?:General |Children's |University )?Hospital\b(?! Association)")),
)  # fmt: skip


PATTERN_WORDS = frozenset().union(*(named.words for named in PATTERN_ENTITIES))


def pattern_entities(prepared: PreparedText, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Spans with each `PATTERN_ENTITIES` match as its type: a span it overlaps of another type gives way."""
    if prepared.words.isdisjoint(PATTERN_WORDS):
        return spans
    found = []
    for named in PATTERN_ENTITIES:
        if named.words & prepared.words:
            found += [(m.start(), m.end(), named.type) for m in named.pattern.finditer(prepared.text)
                      if starts_word(prepared.lowered, m.start())]
    if not found:
        return spans
    kept = [span for span in spans if not any(
        s < span[1] and span[0] < e and typ != span[2] for s, e, typ in found)]
    new = [match for match in found if not any(s < match[1] and match[0] < e for s, e, _ in kept)]
    return sorted(kept + new)
