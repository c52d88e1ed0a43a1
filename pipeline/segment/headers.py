"""Recognise the lines that head a list of criteria, as registries actually write them.

Two kinds of heading, each a whole line (or, with a colon, the start of one: text glued after
the colon is read as a line of its own):

- Criteria headers: `Inclusion Criteria:`, with qualifiers before or after the words: `Key
  Inclusion Criteria:`, `Patient Inclusion Criteria`, `Donor Eligibility Criteria:`, `Part B
  Exclusion Criteria:`, `Inclusion criteria for Part B:`, `Exclusion Criteria at Enrollment:`,
  `Key Inclusion Criteria include:`. `Eligibility criteria` heads an inclusion list. A lone
  `Inclusion` / `Exclusion:` also counts.
  Headers naming a sub-population (`Healthy Volunteer Exclusion Criteria:`, `Part II: Key Inclusion
  Criteria for SLE Participants:`) may come inside a section and switch the kind there.
- Sentence headers ending in a colon, whose condition is the list itself: `Subjects will be included
  if:`, `A volunteer will be excluded if one or more of the following conditions apply:`. A sentence
  with a condition of its own (`Patients will be excluded if they have allergies to the following
  drugs:`) is a lead-in criterion, as are bare cohort headings (`Part A:`, evals/GUIDELINE.md).

Qualifiers are kept from reading a criterion as a header by what they may not contain: sentence
words (`must`, `may apply`, `the following`, `protocol-defined`), digits-first list markers, and,
without a colon, more than a short phrase.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.schema import CriterionKind

_DECORATION = r"[*#=_\-\s]*"
_CRITERIA_HEADER = re.compile(
    rf"""^(?P<header>{_DECORATION}
        (?P<prefix>(?:[^\s:]+:?[ \t]+){{0,5}}?)
        (?P<kind>inclusion|exclusionary|exclusion|eligibility)s?\b
        (?P<criteria>[ \t]+(?:criteria|criterion)s?)?
        (?P<suffix>[ \t]*[\w(\-–—][^:：\n]{{0,70}}?)?  # "for Part B", "- Rollover", "(at Screening)"
        (?:[ \t]*(?P<colon>[:：]){_DECORATION}?(?=\S|$)|{_DECORATION}$)
    )""",
    re.IGNORECASE | re.VERBOSE,
)
# Words that make a line a sentence about criteria ("Other protocol-defined inclusion criteria may
# apply", "Subjects must meet all inclusion criteria") rather than the heading of a list.
_SENTENCE_WORDS = frozenset({
    "above", "also", "an", "any", "applies", "apply", "are", "as", "be", "been", "below", "can", "could",
    "described", "each", "every", "following", "fulfil", "fulfill", "further", "has", "have", "if", "is", "listed",
    "may", "meet", "meeting", "meets", "met", "might", "must", "no", "none", "nor", "not", "outlined", "per",
    "refer", "satisfy", "see", "several", "shall", "should", "specified", "such", "than", "these", "this", "those",
    "were", "which", "who", "whose", "will", "would",
})
_LETTER_MARKER = re.compile(r"^(?:[A-Z]|[IVX]{1,4})[.)]$")
_NUMBER_MARKER = re.compile(r"^\(?\d+[.)]$")
_VERB_SUFFIX = re.compile(r"(?i)(?:include|comprise)[sd]?\b|\d+[.)]")
_NOTE = re.compile(r"^\([^()]*\)")
_PREFIX_WORD = re.compile(r"^[A-Za-z0-9][\w'’/&\-]*:?$")
_SENTENCE_HEADER = re.compile(
    r"""^(?P<header>(?:(?:(?:a|an|the|all|any|each)[ \t]+)?(?:[A-Za-z][\w\-'’/]*[ \t]+){0,2}?
        (?:subject|patient|participant|volunteer|individual|person|people|wom[ae]n|m[ae]n|child(?:ren)?|donor
          |recipient|candidate|female|male)s?[ \t]+
        (?:will|may|must|shall|should|can|are|is)[ \t]+(?P<negated>not[ \t]+)?(?:be[ \t]+)?(?:considered[ \t]+)?)?
        (?P<verb>included|enrolled|eligible|excluded|ineligible)\b
        [^:：\n]{0,80}?\b(?:if|when)\b
        (?:[^:：\n]{0,40}?\b(?:any|all|one\ or\ more|each|at\ least\ one|none)\ of\ the\ following\b[^:：\n]{0,40})?
        [ \t]*[:：])[ \t]*$""",
    re.IGNORECASE | re.VERBOSE,
)


@dataclass(frozen=True)
class Header:
    """A heading at the start of a line: the kind of list it opens and where it ends in the line."""

    kind: CriterionKind
    end: int


def match_header(line: str) -> Header | None:
    """The heading `line` starts with, if it is one; `line` is stripped of its indentation."""
    criteria = _criteria_header(line)
    if criteria is not None:
        return criteria
    sentence = _SENTENCE_HEADER.match(line) if line[:1].isupper() else None
    if sentence is not None:
        excluded = sentence.group("verb").lower() in ("excluded", "ineligible") or sentence.group("negated")
        return Header("exclusion" if excluded else "inclusion", sentence.end("header"))
    return None


def _criteria_header(line: str) -> Header | None:
    match = _CRITERIA_HEADER.match(line)
    if match is None:
        return None
    kind, prefix = match.group("kind").lower(), match.group("prefix").split()
    suffix = (match.group("suffix") or "").strip()
    if (prefix or suffix or kind in ("eligibility", "exclusionary")) and not match.group("criteria"):
        return None
    if not match.group("colon") and not _short_heading(line, kind, prefix, suffix):
        return None
    if prefix and _NUMBER_MARKER.match(prefix[0]):
        return None  # "3. Inclusion criteria of study X ...": a numbered criterion
    if prefix and _LETTER_MARKER.match(prefix[0]):
        prefix = prefix[1:]
    if not all(_PREFIX_WORD.match(word) for word in prefix) or (len(prefix) > 1 and prefix[0].islower()):
        return None  # "or MUGA scan. Exclusion Criteria:", "treated with X Exclusion Criteria:": text runs into it
    suffix = _NOTE.sub("", suffix, count=1)  # "(all of the 8 must be met)": a note, not a sentence
    words = [word.strip("()[],.;'’\"").lower() for word in [*prefix, *suffix.split()]]
    if any(word in _SENTENCE_WORDS or word.startswith("protocol") or ("/" in word and "clusion" in word)
           for word in words):
        return None
    return Header("exclusion" if kind.startswith("exclusion") else "inclusion", len(match.group("header")))


def _short_heading(line: str, kind: str, prefix: list[str], suffix: str) -> bool:
    """Without a colon, only a short capitalised phrase is a heading ('Subject exclusion criteria',
    'Inclusion Criteria for Dose Escalation Phase'); a lowercase line is a wrapped criterion."""
    if len(suffix.split()) > 6 or len(prefix) > 3 or _VERB_SUFFIX.match(suffix):
        return False
    plain = not prefix and not suffix and kind in ("inclusion", "exclusion")
    return plain or line.lstrip("*#=_- \t")[:1].isupper()
