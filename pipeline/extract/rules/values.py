"""Find quantities ('hemoglobin < 80g/L', 'aged 18-75 years', 'ALT > 2 × ULN') and normalise them.

Conventions (the same as the `Value` schema and evals/GUIDELINE.md):
- comparator: one of < <= > >= = between. '≥ 18' -> '>=', low 18; '< 80' -> '<', high 80;
  a bare number is '=' with low = high; ranges ('18-75', 'between 40 and 65', '5 to 18 years',
  'from 2 to 4') -> 'between', low and high.
- words: 'at least', 'no less than', 'not less than', 'a minimum of', '... or more/greater/older/above'
  -> '>='; 'more than', 'greater than', 'higher than', 'above', 'over', 'exceeding' -> '>';
  'at most', 'up to', 'no greater/more than', 'not more than', 'not exceeding', 'maximum',
  '... or less/younger/below' -> '<='; 'less than', 'lower than', 'below', 'under' -> '<'.
  Symbols: '≥ >= => ⩾ ≧' -> '>=', '≤ <= =< ⩽ ≦' -> '<=', '> <' as is; '>or=', '< or =', '>/=' and '</=' too.
- multiples of a reference limit keep the reference in the unit: '2 × ULN', '1.3 x upper limit
  normal', '2.5 times the institutional upper limit of normal', '2.5 times normal' -> unit 'x ULN'
  ('x LLN' for the lower limit).
- units are normalised: '×10^9/L', 'x10⁹/L', '10^9/L', '×109/L' (a superscript lost in scraping)
  -> 'x10^9/L' (same for ^12 and ^6); 'g/l' -> 'g/L', 'mg/dl' -> 'mg/dL', 'ml/min' -> 'mL/min',
  'mg/kg/d' -> 'mg/kg/day', 'kg/m²' -> 'kg/m2', 'mmHg', '%', 'cm', and time units -> 'years',
  'months', 'weeks', 'days', 'hours' (so 'aged 18 years' has unit 'years').
- qualitative results ('positive', 'negative', 'abnormal', 'elevated', 'detectable') are values with
  comparator, bounds and unit null (GUIDELINE section 5: a negative test is a value, not a negation).
- number words 'one' .. 'twelve', 'twenty' .. 'ninety', 'hundred' are read; '1,500' is 1500.
The Value text is the exact source substring from the comparator (or first number) to the unit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pipeline.extract.rules.lexicon import PreparedText, starts_word
from pipeline.extract.rules.spans import SpanIndex

NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "eighteen": 18, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
}  # fmt: skip

NUM = r"(?:\d{1,3}(?:,\d{3})+(?![\d,])|\d+(?:\.\d+)?|\.\d+|" + "|".join(NUMBER_WORDS) + r")(?:\s*\(\d+(?:\.\d+)?\))?"

COMPARATOR_WORDS: list[tuple[str, str]] = [
    (r">\s*or\s*=|>\s*/\s*=|≥|>=|=>|⩾|≧|(?:greater|more|higher|above)\s+(?:than\s+)?or\s+equal(?:\s+to)?|"
     r"equal\s+(?:to\s+)?or\s+(?:greater|more|higher|above)(?:\s+than)?|at\s+least|no\s+less\s+than|"
     r"not\s+less\s+than|no\s+fewer\s+than|not\s+fewer\s+than|a\s+minimum\s+of|minimum(?:\s+of)?", ">="),
    (r"<\s*or\s*=|<\s*/\s*=|≤|<=|=<|⩽|≦|(?:less|lower|below|fewer)\s+(?:than\s+)?or\s+equal(?:\s+to)?|"
     r"equal\s+(?:to\s+|of\s+)?or\s+(?:less|lower|below)(?:\s+than)?|equal\s+of\s+less\s+than|at\s+most|up\s+to|"
     r"no\s+(?:greater|more|higher)\s+than|not\s+(?:greater|more|higher)\s+than|not\s+exceeding|"
     r"not\s+to\s+exceed|does\s+not\s+exceed|a\s+maximum\s+of|maximum(?:\s+of)?", "<="),
    (r">|＞|(?:greater|more|higher|older)\s+than|above|over|exceeding|exceeds|in\s+excess\s+of", ">"),
    (r"<|＜|(?:less|lower|fewer|younger)\s+than|below|under", "<"),
    (r"=|equal\s+to|equals", "="),
]  # fmt: skip
POSTFIX = [(r"or\s+(?:more|greater|higher|above|older|over)|and\s+(?:above|over|older)|\+", ">="),
           (r"or\s+(?:less|lower|fewer|below|younger|under)|and\s+(?:below|under|younger)", "<=")]  # fmt: skip

REFERENCE = (
    r"(?P<ref>(?:x|×|\*|times|fold)?\s*(?:the\s+)?(?:institutional\s+|laboratory\s+)?"
    r"(?:(?P<uln>uln|upper\s+limits?\s+(?:of\s+)?(?:the\s+)?normal(?:\s+range)?|normal\s+upper\s+limit|"
    r"upper\s+normal\s+limit)|(?P<lln>lln|lower\s+limits?\s+(?:of\s+)?(?:the\s+)?normal(?:\s+range)?))"
    r"(?:\s*\(\s*[ul]ln\s*\))?|(?:x|×|times)\s*(?:(?:higher\s+than|above)\s+)?(?:the\s+)?(?P<uln2>normal)(?:\s+reference)?(?:\s+(?:value|range|limit))?\b)"
)
UNITS: list[tuple[str, str]] = [
    (r"[x×*]?\s*10\s*(?:\^|\*\*|e)?\s*(?:9|⁹)\s*/\s*l\b|[x×]\s*109\s*/\s*l\b", "x10^9/L"),
    (r"[x×*]?\s*10\s*(?:\^|\*\*|e)?\s*(?:12|¹²)\s*/\s*l\b|[x×]\s*1012\s*/\s*l\b", "x10^12/L"),
    (r"[x×*]?\s*10\s*(?:\^|\*\*|e)?\s*(?:3|³)\s*/\s*(?:µl|ul|mm3|mm³|μl|mcl)|[x×]\s*103\s*/\s*(?:µl|ul|mm3|μl|mcl)",
     "x10^3/uL"),
    (r"ml\s*/\s*min\s*/\s*1\.73\s*m\s*(?:2|²|\^2)", "mL/min/1.73m2"),
    (r"(?:ml|milliliters?|millilitres?)\s*(?:/|per)\s*min(?:ute)?\b", "mL/min"),
    (r"mg\s*/\s*kg\s*/\s*(?:d|day)\b", "mg/kg/day"),
    (r"mg\s*/\s*m\s*(?:2|²|\^2)", "mg/m2"),
    (r"mg\s*(?:/|per)\s*(?:d|day)\b", "mg/day"), (r"mg\s*%", "mg/dL"),
    (r"kg\s*/\s*m\s*(?:2|²|\^2)", "kg/m2"),
    (r"(?:g|gm|gr)\s*/\s*dl\b", "g/dL"), (r"mg\s*/\s*dl\b", "mg/dL"), (r"(?:g|gm)\s*/\s*l\b", "g/L"),
    (r"mg\s*/\s*l\b", "mg/L"), (r"(?:µ|μ|u|mc)g\s*/\s*l\b", "ug/L"), (r"(?:µ|μ|u|mc)g\s*/\s*ml\b", "ug/mL"),
    (r"ng\s*/\s*ml\b", "ng/mL"), (r"ng\s*/\s*l\b", "ng/L"), (r"pg\s*/\s*ml\b", "pg/mL"),
    (r"mmol\s*/\s*mol\b", "mmol/mol"), (r"mmol\s*/\s*l\b", "mmol/L"), (r"(?:µ|μ|u)mol\s*/\s*l\b", "umol/L"),
    (r"(?:iu|u)\s*/\s*l\b", "U/L"), (r"iu\s*/\s*ml\b", "IU/mL"), (r"u\s*/\s*ml\b", "U/mL"),
    (r"(?:cells\s*)?/\s*(?:mm3|mm³|mm\^3|cu\s*mm)", "/mm3"), (r"(?:cells\s*)?/\s*(?:µl|ul|μl|mcl)\b", "/uL"),
    (r"(?:cells\s*)?/\s*ml\b", "/mL"), (r"(?:µ|μ|u)mol\b|micromoles?\b", "umol"),
    (r"%\s*(?:of\s+(?:the\s+)?)?predicted(?:\s+normal)?\b", "% predicted"), (r"pack[\s-]*years?\b", "pack-years"),
    (r"mg\s*(?:/|per)\s*(?:week|wk)\b", "mg/week"), (r"mg\s*/\s*24\s*h(?:ours?)?\b", "mg/24h"), (r"msec\b|ms\b", "ms"),
    (r"mm\s*hg\b", "mmHg"), (r"beats?\s*(?:per|/)\s*min(?:ute)?\b|bpm\b", "bpm"),
    (r"%|percent\b|per\s*cent\b", "%"),
    (r"kilograms?\b|kgs?\b", "kg"), (r"mg\b", "mg"), (r"cm\b|centimet(?:er|re)s?\b", "cm"), (r"mm\b", "mm"),
    (r"(?:years?|yrs?|y)(?:\s+of\s+age|\s+old)?\b", "years"), (r"months?\b|mos?\b", "months"),
    (r"weeks?\b|wks?\b", "weeks"), (r"days?\b", "days"), (r"hours?\b|hrs?\b|h\b", "hours"),
    (r"points?\b", "points"),
]  # fmt: skip
TIME_UNITS = frozenset({"years", "months", "weeks", "days", "hours"})
DOSE_UNITS = frozenset({"mg", "mg/day", "mg/kg/day", "mg/m2", "mg/week", "mg/24h"})



def _alternatives(table: list[tuple[str, str]]) -> str:
    return "(?:" + "|".join(pattern for pattern, _ in table) + ")"


_TAIL = rf"(?:\s*{REFERENCE}|\s*(?P<unit>{_alternatives(UNITS)}))?(?:\s*(?P<post>{_alternatives(POSTFIX)})(?!\w))?"
_LISTED = r"(?:\s*,\s*\d{1,2}(?!\d|,\d))*(?:\s*,)?"  # a list's middle, 'ECOG 0, 1 or 2': first to last
_RANGE_SEP = r"(?:\s*(?:-|–|—|\\?~|to)\s*|\s+and\s+)"  # '\~': a tilde escaped by CT.gov's markdown

VALUE = re.compile(
    rf"(?:(?<![a-z0-9_.])|(?=[<>≥≤=＜＞⩾⩽≧≦]))(?:"
    rf"(?:between|from)\s+(?P<rlow>{NUM})(?:\s*{_alternatives(UNITS)})?{_RANGE_SEP}(?P<rhigh>{NUM})"
    rf"|(?P<low>{NUM})(?:\s*{_alternatives(UNITS)})?{_LISTED}\s*(?:-|–|—|\\?~|to|or)\s*(?P<high>{NUM})"
    rf"|(?P<cmp>{_alternatives(COMPARATOR_WORDS)})\s*(?P<num>{NUM})"
    rf"|(?P<bare>{NUM})"
    rf"){_TAIL}"
)  # compiled for lower_ascii() text: all literals are lower case


@dataclass(slots=True)
class ValueMatch:
    start: int
    end: int
    text: str
    comparator: str | None
    low: float | None
    high: float | None
    unit: str | None

    @property
    def is_duration(self) -> bool:
        return self.unit in TIME_UNITS


def parse_number(raw: str) -> float:
    """'1,500' -> 1500, 'three (3)' -> 3, '.5' -> 0.5."""
    word = raw.split("(")[0].strip().lower()
    if word in NUMBER_WORDS:
        return float(NUMBER_WORDS[word])
    return float(word.replace(",", ""))


_COMPILED = {id(table): [(re.compile(pattern), name) for pattern, name in table]
             for table in (UNITS, COMPARATOR_WORDS, POSTFIX)}  # fmt: skip


@lru_cache(maxsize=4096)
def _name_of(raw: str, table_id: int) -> str | None:
    """The normalised name of a matched unit/comparator text, e.g. 'ml/min' -> 'mL/min'."""
    return next((name for pattern, name in _COMPILED[table_id] if pattern.fullmatch(raw)), None)


def _first_group(match: re.Match, group: str, table: list[tuple[str, str]]) -> str | None:
    raw = match.group(group)
    return None if raw is None else _name_of(raw, id(table))


def _unit(match: re.Match) -> str | None:
    if match.group("ref"):
        return "x ULN" if match.group("uln") or match.group("uln2") else "x LLN"
    return _first_group(match, "unit", UNITS)


def _bounds(match: re.Match) -> tuple[str | None, float | None, float | None]:
    if match.group("rlow") or match.group("low"):
        low = parse_number(match.group("rlow") or match.group("low"))
        high = parse_number(match.group("rhigh") or match.group("high"))
        return "between", low, high
    if match.group("num"):
        number = parse_number(match.group("num"))
        comparator = _first_group(match, "cmp", COMPARATOR_WORDS)
    else:
        number = parse_number(match.group("bare"))
        comparator = _first_group(match, "post", POSTFIX) or "="
    if comparator in (">", ">="):
        return comparator, number, None
    if comparator in ("<", "<="):
        return comparator, None, number
    return "=", number, number


def _plausible(match: re.Match, unit: str | None) -> bool:
    """A bare number needs a unit or a postfix comparator ('65 or older'), else it is a list index or ID."""
    if match.group("bare") is None:
        return True
    return unit is not None or _first_group(match, "post", POSTFIX) is not None


DIGITS = re.compile(r"[0-9][0-9.,]*")
NUMBER_WORD = re.compile("|".join(NUMBER_WORDS))
WINDOW_BEFORE, WINDOW_AFTER = 35, 70  # longest prefix 'greater than or equal to', tail '... of normal (ULN)'


def _whole_word(lowered: str, start: int, end: int) -> bool:
    return (start == 0 or not lowered[start - 1].isalpha()) and (end == len(lowered) or not lowered[end].isalpha())


@lru_cache(maxsize=8)
def number_windows(lowered: str) -> tuple[tuple[int, int], ...]:
    """Stretches of text around numbers: every value contains one, so the regexes need not scan the rest.

    Cached: the value and time-window finders both ask for the same text in turn.
    """
    anchors = [m.span() for m in DIGITS.finditer(lowered)]
    anchors += [m.span() for m in NUMBER_WORD.finditer(lowered) if _whole_word(lowered, *m.span())]
    windows: list[tuple[int, int]] = []
    for first, last in sorted(anchors):
        start = max(0, first - WINDOW_BEFORE)
        start = lowered.rfind(" ", 0, start) + 1 if start else 0
        end = min(len(lowered), last + WINDOW_AFTER)
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
    return tuple(windows)


def _matches(lowered: str) -> list[re.Match]:
    found: list[re.Match] = []
    for start, end in number_windows(lowered):
        found += VALUE.finditer(lowered, start, end)
    return found


QUALITATIVE = re.compile(
    r"(?<![a-z-])(?:positive|negative|abnormal|elevated|detectable|undetectable|reactive|"
    r"(?<!of )(?<!the )(?<!upper )(?<!lower )(?<!predicted )"
    r"normal(?!\s+(?:upper|lower|range|limit|reference|saline|value)))(?![a-z-])"
)


QUALITATIVE_HINT = re.compile(r"positive|negative|normal|elevated|detectable|reactive")  # cheap first pass


def _qualitative(text: str, lowered: str, numeric: list[ValueMatch]) -> list[ValueMatch]:
    """Test results without a number ('HBsAg positive'): comparator, bounds and unit stay null."""
    if not QUALITATIVE_HINT.search(lowered):
        return []
    index = SpanIndex(numeric)
    return [
        ValueMatch(m.start(), m.end(), text[m.start() : m.end()], None, None, None, None)
        for m in QUALITATIVE.finditer(lowered)
        if not any(v.start <= m.start() < v.end for v in index.near(m.start(), m.start()))
    ]


def find_values(text: str | PreparedText) -> list[ValueMatch]:
    """Every quantity in `text`, left to right, non-overlapping; offsets are into `text`."""
    prepared = PreparedText.of(text)
    text, lowered = prepared.text, prepared.lowered
    found = []
    for match in _matches(lowered):
        if not starts_word(lowered, match.start()):
            continue
        unit = _unit(match)
        if not _plausible(match, unit):
            continue
        comparator, low, high = _bounds(match)
        end = match.end()
        while end > match.start() and text[end - 1].isspace():
            end -= 1
        found.append(ValueMatch(match.start(), end, text[match.start() : end], comparator, low, high, unit))
    found = _merge_ranges(text, found)
    found += _qualitative(text, lowered, found)
    return sorted(found, key=lambda v: v.start)


RANGE_JOIN = re.compile(r"\s*(?:and|to|-|,|,\s*and)?\s*\\?")  # '\\<' : a markdown-escaped comparator


def _same_unit(first: str | None, second: str | None) -> bool:
    """Units that can bound one range: equal, one missing, or one refining the other ('%', '% predicted')."""
    return first is None or second is None or first.split()[0] == second.split()[0]


def _merge_ranges(text: str, found: list[ValueMatch]) -> list[ValueMatch]:
    """'>=7.0% and <= 9.5%', '≥18 and ≤70 years' -> one 'between' value."""
    merged: list[ValueMatch] = []
    for value in found:
        last = merged[-1] if merged else None
        if (
            last is not None
            and last.comparator in (">", ">=")
            and value.comparator in ("<", "<=")
            and RANGE_JOIN.fullmatch(text, last.end, value.start)
            and _same_unit(last.unit, value.unit)
        ):
            unit = max(last.unit or "", value.unit or "", key=len) or None  # '%' and '% predicted': the latter
            merged[-1] = ValueMatch(last.start, value.end, text[last.start : value.end], "between", last.low,
                                    value.high, unit)  # fmt: skip
        else:
            merged.append(value)
    return merged
