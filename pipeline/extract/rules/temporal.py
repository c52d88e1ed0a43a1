"""Find time windows ('within 4 weeks prior to screening') and normalise them to days.

Conventions (evals/GUIDELINE.md section 6; the `Temporal` schema):
- days: day 1, week 7, month 30, year 365 (hours count as 1/24 day).
- anchors: now (the default when the text names none), screening, enrollment ('study entry', 'registration',
  'inclusion', 'joining the group'), first_dose ('first dose/treatment/administration', 'start of study
  treatment', 'Day 0', 'Day 1', 'study drug'), randomization, consent, diagnosis, baseline, last_dose,
  study ('during the study'), surgery; else the event's word when the list lacks it (GUIDELINE 6: 'another
  single lowercase token'): 'before PCI' -> pci, '3 months after RYGB' -> rygb, 'at time of delivery' -> delivery.
- windows:
  'within N U [prior to|before|of] A', 'N U before A'   -> before A 0 N
  'in/during/over the past|last|previous N U'          -> before now 0 N
  'at least|more than N U before A', 'more than N U ago' -> before A N -
  'at least N U after X' (X is over: an unnamed event)  -> before now N -
  'within N U after A', 'N U after A'                  -> after A 0 N
  'for (at least|more than) N U [prior to A]'          -> during now|A N -   (a duration)
  'prior to/before A' (no number) -> before A - -;  'at A' -> during A - -;  'during the study' -> during study - -
  'in the last/next year' (no number)                 -> before|after now 0 365
  'for the duration of the study', 'during treatment' -> during study|first_dose - -
  'history (of)', 'previous(ly)', 'prior', 'past', 'ever', 'has had', 'underwent' -> before now - -
  'current(ly)', 'concurrent', 'concomitant', 'ongoing', 'undergoing', 'at present' -> during now - -
  ('active' is no time: an activity qualifier, GUIDELINE 4; Chia has it a Qualifier 70 times, a Temporal 27)
  'baseline' alone -> during baseline - -
  'pre-operative', 'post-operative' -> before|after surgery - -;  'pre-treatment' -> before first_dose - -;
  'pre-enrollment', 'pre-randomization' -> before enrollment|randomization - -;  'pre-existing' -> before now - -
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pipeline.extract.rules.lexicon import PreparedText, matches_at, word_set
from pipeline.extract.rules.spans import Intervals
from pipeline.extract.rules.values import NUM, number_windows, parse_number

UNIT_DAYS = {"year": 365.0, "month": 30.0, "week": 7.0, "day": 1.0, "hour": 1 / 24}
_UNIT = r"(?P<unit>years?|yrs?|y|months?|mos?|weeks?|wks?|days?|hours?|hrs?|h)\b"
_NUMBER = rf"(?P<num>{NUM}|a|an|one)"

_STUDY_THING = r"(?:the\s+)?(?:study\s+)?(?:drug|treatment|medication|intervention|therapy|dosing)"
ANCHORS: list[tuple[str, str]] = [
    (r"(?:the\s+)?(?:study\s+)?screening(?:\s+visit)?", "screening"),
    (r"joining\s+the\s+group|(?:entering|entry\s+into)\s+(?:the|this)\s+(?:study|trial)|(?:the\s+)?(?:study\s+)?"
     r"(?:entry|enrol?lment|registration|inclusion|admission)(?:\s+(?:in|into)\s+(?:the|this)\s+(?:study|trial))?",
     "enrollment"),
    (r"(?:the\s+)?(?:planned\s+)?(?:first|1st|initial)\s+(?:study\s+)?(?:dose|administration|treatment|infusion|"
     rf"injection|dosing)(?:\s+of\s+{_STUDY_THING})?|(?:the\s+)?(?:start|initiation|beginning)\s+of\s+{_STUDY_THING}|"
     rf"starting\s+{_STUDY_THING}|(?:cycle\s+1,?\s+|study\s+)?day\s+[01]\b|"
     r"(?:the\s+)?study\s+(?:drug|treatment|medication)(?:\s+administration)?", "first_dose"),
    (r"(?:the\s+)?randomi[sz]ation", "randomization"),
    (r"(?:the\s+)?diagnosis", "diagnosis"),
    (r"(?:signing\s+(?:of\s+)?(?:the\s+)?)?(?:written\s+)?informed\s+consent|(?:the\s+)?consent", "consent"),
    (rf"(?:the\s+)?(?:last|final)\s+dose(?:\s+of\s+{_STUDY_THING})?", "last_dose"),
    (r"(?:the\s+)?baseline(?:\s+visit)?", "baseline"),
    (r"visit\s+\d+", "visit_"),
    (r"(?:the\s+)?surgery|(?:the\s+)?operation", "surgery"),
]  # fmt: skip
_ANCHOR = "(?:" + "|".join(f"(?P<a{i}>{pattern})" for i, (pattern, _) in enumerate(ANCHORS)) + ")"
_NOT_EVENT = r"(?:any|an?|this|that|these|those|each|which|what|being|having|it|them|they|he|she|his|her|their|\d)"
_EVENT = rf"(?!{_NOT_EVENT}\b)(?P<event>[a-z][a-z0-9-]+)\b"  # an event the anchor list lacks: 'before PCI' -> pci
_BEFORE = r"(?P<before>prior\s+(?:to|of)|before|preceding|previous\s+to)"
_BEFORE_OF = r"(?P<before>prior\s+(?:to|of)|before|preceding|of|previous\s+to|from)"
_AFTER = r"(?P<after>after|following|since)"
_REL = rf"(?:\s+(?:{_BEFORE_OF}|{_AFTER})(?:\s*(?:the\s+)?(?:signing\s+of\s+)?{_ANCHOR})?)?"
_AT_LEAST = r"(?P<least>at\s+least|more\s+than|greater\s+than|over|a\s+minimum\s+of|≥|>=|>)"
_AT_MOST = r"(?P<most>less\s+than|up\s+to|no\s+more\s+than|at\s+most|≤|<=|<)"

TRIGGERS = {
    "within": ("within",), "past": ("last", "past", "previous", "preceding", "prior", "next", "following", "coming"),
    "for": ("for",),
    "offset": ("before", "prior", "preceding", "previous", "after", "following", "since"), "ago": ("ago",),
    "since": ("after", "since", "following"), "elapsed": ("elapsed", "passed"),
    "after_event": ("after", "following"),
    "anchored": ("screening", "entry", "enrol", "registration", "inclusion", "admission", "joining", "entering",
                 "first", "1st", "initial", "start", "initiation", "beginning", "day", "study", "randomi", "diagnosis",
                 "consent", "informed", "last", "final", "baseline", "visit", "surgery", "operation"),  # anchor words
    "study": ("study", "trial", "dosing"),
    "event": ("prior", "before", "preceding", "previous", "after", "since", "time"),
    "last": ("last", "past", "previous", "preceding", "prior", "next", "following", "coming"),
    "history": ("history", "previous", "prior", "past", "ever", "has", "underwent", "recent"),
    "current": ("current", "concurrent", "concomitant", "ongoing", "presently", "present", "undergoing"),
    "treatment": ("treatment",),
    "baseline": ("baseline",),
    "periop": ("pre", "post"),
}  # fmt: skip
_ALL_TRIGGERS = sorted({w for ws in TRIGGERS.values() for w in ws}, key=len, reverse=True)
TRIGGER_WORDS = re.compile(r"(?<![a-z0-9])(?:" + "|".join(_ALL_TRIGGERS) + ")")  # which patterns are worth running
_LAST = r"(?:last|past|previous|preceding|prior)"
_NEXT = r"(?P<next>next|following|coming)"
_AMOUNT = rf"{_NUMBER}\s*{_UNIT}"
_BOUNDED = rf"(?:{_AT_LEAST}\s*|{_AT_MOST}\s*)?{_AMOUNT}"
_TO_ANCHOR = rf"\s+(?:{_BEFORE}|{_AFTER})\s+(?:the\s+)?(?:signing\s+of\s+)?(?:{_ANCHOR}|(?(before){_EVENT}|(?!)))"
# an unlisted event only before: 'at least 2 weeks after <an event>' is the 'since' pattern (the event is over)


def _word_start(pattern: str) -> re.Pattern:
    """Compile for lower_ascii() text; the look-behind makes positions inside words fail at once."""
    return re.compile(r"(?<![a-z0-9])" + pattern)


_ELAPSED = r"(?:(?:must|should|will)\s+)?(?:have\s+)?(?:elapsed|passed)"  # '4 weeks must have elapsed since'

PATTERNS: list[tuple[str, re.Pattern]] = [
    ("within", re.compile(rf"within\s+(?:the\s+)?(?:(?:{_LAST}|{_NEXT})\s+)?{_AMOUNT}{_REL}")),  # glued too: 'xwithin'
    ("past", _word_start(rf"(?:in|during|over|for)(?:\s+the)?\s+(?:{_LAST}|{_NEXT})\s+{_AMOUNT}{_REL}")),
    ("for", _word_start(rf"for\s+(?:{_AT_LEAST}\s+|{_AT_MOST}\s+)?{_AMOUNT}(?:\s+or\s+(?:more|longer))?{_REL}")),
    ("offset", _word_start(rf"{_BOUNDED}{_TO_ANCHOR}")),
    ("ago", _word_start(rf"{_BOUNDED}\s+ago\b")),
    ("since", _word_start(rf"{_AT_LEAST}\s*{_AMOUNT}\s+(?:after|since|following)\b")),
    ("elapsed", _word_start(rf"(?:{_AT_LEAST}\s*)?{_AMOUNT}\s+{_ELAPSED}\s+(?:since|from|after|following)\b")),
    ("after_event", _word_start(rf"{_AMOUNT}\s+(?P<after>after|following)\s+(?:the\s+)?{_EVENT}")),
    ("anchored", _word_start(rf"(?:{_BEFORE}|{_AFTER}|(?P<at>at(?:\s+(?:the\s+)?time\s+of)?|during))\s+(?:the\s+)?"
                             rf"{_ANCHOR}")),
    ("event", _word_start(rf"(?:{_BEFORE}|(?P<after>after|since)|(?P<at>at\s+(?:the\s+)?time\s+of))\s+(?:the\s+)?"
                          rf"{_EVENT}")),  # not 'following': 'the following criteria'
    ("last", _word_start(rf"(?:(?:in|during|within|over)\s+(?:the\s+)?)?(?:{_LAST}|{_NEXT})\s+"
                         r"(?P<unit>year|month|week|day)\b")),
    ("study", _word_start(r"(?:(?:(?:at\s+any\s+time\s+)?during|throughout)\s+(?:the\s+)?|"
                          r"(?:for|during|within|throughout)\s+the\s+(?:duration|course)\s+of\s+(?:the\s+)?)"
                          r"(?:participation\s+in\s+the\s+)?"
                          r"(?:study|trial|dosing)(?:\s+(?:treatment\s+)?(?:period|interval|participation))?\b")),
    ("treatment", _word_start(r"during\s+(?:the\s+)?(?:study\s+)?treatment(?:\s+period)?\b")),
    ("history", _word_start(r"(?:(?:history\s+of|past|previous|prior)\s+or\s+current(?:ly)?|"
                            r"current(?:ly)?\s+or\s+(?:past|previous|prior|history\s+of)|"
                            r"(?:a\s+)?(?:(?:past|prior|previous)\s+)?(?:medical\s+)?history(?:\s+of)?|previous(?:ly)?|"
                            r"prior(?!\s+to)|past|ever|has\s+had|underwent|has\s+undergone|recent(?:ly)?)\b")),
    ("current", _word_start(r"(?:current(?:ly)?|concurrent(?:ly)?|concomitant|ongoing|presently|undergoing|"
                            r"at\s+present)\b")),
    ("baseline", _word_start(r"baseline\b")),
    ("periop", _word_start(r"(?:(?P<pre>pre)|post)-?(?:(?P<op>operative(?:ly)?|surgical|surgery)|(?P<tx>treatment)|"
                           r"(?P<enr>enrol?lment)|(?P<rnd>randomi[sz]ation)|existing)\b")),
]


@dataclass(slots=True)
class TemporalMatch:
    start: int
    end: int
    text: str
    direction: str | None
    anchor: str | None
    min_days: float | None
    max_days: float | None


def _days(match: re.Match) -> float | None:
    """The amount in days; a unit with no number ('in the last year') is one of it."""
    groups = match.groupdict()
    if groups.get("unit") is None:
        return None
    raw = (groups.get("num") or "a").lower()
    number = 1.0 if raw in ("a", "an") else parse_number(raw)
    unit = match.group("unit").lower().rstrip("s")
    unit = {"yr": "year", "y": "year", "mo": "month", "wk": "week", "hr": "hour", "h": "hour"}.get(unit, unit)
    return round(number * UNIT_DAYS[unit], 4)


_ANCHOR_GROUPS = [(f"a{i}", name) for i, (_, name) in enumerate(ANCHORS)]


def _anchor(match: re.Match) -> str | None:
    groups = match.groupdict()
    for group, name in _ANCHOR_GROUPS:
        text = groups.get(group)
        if text is not None:
            return name + text.split()[-1] if name == "visit_" else name
    if groups.get("event"):
        return groups["event"]
    if groups.get("op"):  # 'pre-operative', 'postoperatively'
        return "surgery"
    if groups.get("enr") or groups.get("rnd"):  # 'pre-enrollment', 'pre-randomisation'
        return "enrollment" if groups.get("enr") else "randomization"
    return "first_dose" if groups.get("tx") else None  # 'pre-treatment'; 'pre-existing' is before now


def _window(kind: str, match: re.Match) -> tuple[str | None, float | None, float | None]:
    """(direction, min_days, max_days) for one pattern kind."""
    groups = match.groupdict()
    days = _days(match)
    direction = "after" if groups.get("after") is not None or groups.get("next") is not None else "before"
    if kind in ("within", "past", "last"):
        return direction, 0.0, days
    if kind == "for":
        if groups.get("most"):  # 'for up to 4 weeks before randomization': a window
            return direction, 0.0, days
        return "during", days, None
    if kind in ("offset", "ago", "after_event"):
        if groups.get("least"):
            return direction, days, None
        return direction, 0.0, days
    if kind in ("since", "elapsed"):
        return "before", days, None
    if kind in ("anchored", "event"):
        return ("during" if groups.get("at") else direction), None, None
    if kind == "history":
        return "before", None, None
    if kind == "periop":
        return ("before" if groups.get("pre") else "after"), None, None
    return "during", None, None  # current, study, treatment, baseline


FIXED_ANCHORS = {"study": "study", "treatment": "first_dose", "baseline": "baseline"}
NUMBERED = frozenset({"within", "past", "for", "offset", "ago", "since", "elapsed", "after_event"})
UNIT_HINT = re.compile(_UNIT)  # every numbered pattern holds an amount, so a unit: no unit, no need to look
FIRST_WORDS = {  # the words each pattern without a number can start with (normalised like tokens)
    kind: word_set(words)
    for kind, words in {
        "anchored": "prior before preceding previous after following since at during",
        "last": "in during within over last past previous preceding prior next following coming",
        "study": "at during throughout for within",
        "event": "prior before preceding previous after since at",
        "treatment": "during",
        "baseline": "baseline",
        "history": "history past previous previously prior current currently a medical ever has underwent recent "
                   "recently",
        "current": "current currently concurrent concurrently concomitant ongoing presently undergoing at",
        "periop": "pre post " + " ".join(f"{when}{what}" for when in ("pre", "post") for what in (
            "operative", "operatively", "surgical", "surgery", "treatment", "existing", "enrollment", "enrolment",
            "randomization", "randomisation")),
    }.items()
}  # fmt: skip


def _finditer(kind: str, pattern: re.Pattern, text: PreparedText) -> list[re.Match]:
    """Matches of one pattern: near numbers for those that need one, else where a first word starts."""
    lowered = text.lowered
    if kind in NUMBERED:
        return [m for start, end in number_windows(lowered) for m in pattern.finditer(lowered, start, end)]
    if text.shortcuts:
        return matches_at(pattern, lowered, text.starts_of(FIRST_WORDS[kind]))
    return list(pattern.finditer(lowered))


@lru_cache(maxsize=65536)
def _trigger_of(word: str) -> str | None:
    match = TRIGGER_WORDS.match(word)
    return match.group() if match else None


def _triggers(text: PreparedText) -> set[str]:
    """The trigger words present: those starting where the patterns may start, and 'within' anywhere.

    With shortcuts, from the tokenizer's words: a token's trigger is the one its normalised form
    starts with (no trigger ends in a plural 's' that normalising could strip), the same set as
    scanning the text again at a tenth of the cost.
    """
    if text.shortcuts:
        found = {trigger for word in text.words if (trigger := _trigger_of(word))}
    else:
        found = set(TRIGGER_WORDS.findall(text.lowered))
    if "within" in text.lowered:  # the 'within' pattern also finds it glued to the word before
        found.add("within")
    return found


def find_temporals(text: str | PreparedText) -> list[TemporalMatch]:
    """Every time expression in `text`, non-overlapping, earlier patterns winning ties."""
    prepared = PreparedText.of(text)
    source, lowered = prepared.text, prepared.lowered
    taken = Intervals()
    found: list[TemporalMatch] = []
    present = _triggers(prepared)
    amounts = bool(number_windows(lowered)) and UNIT_HINT.search(lowered) is not None
    for kind, pattern in PATTERNS:
        if present.isdisjoint(TRIGGERS[kind]) or (kind in NUMBERED and not amounts):
            continue
        taken.new_run()
        for match in _finditer(kind, pattern, prepared):
            start, end = match.span()
            if taken.overlaps(start, end):
                continue
            direction, low, high = _window(kind, match)
            anchor = _anchor(match)
            if kind in ("within", "past", "for") and anchor is None:  # drop a dangling "prior to"
                end = match.end("unit")
            anchor = FIXED_ANCHORS.get(kind) or anchor or "now"
            taken.add(start, end)
            found.append(TemporalMatch(start, end, source[start:end], direction, anchor, low, high))
    return sorted(found, key=lambda t: t.start)
